/**
 * Mapping of jose verification errors to Turnkey's wire errors (RFC 6750 §3.1: a bad or expired
 * bearer token is a 401 `invalid_token`; we split out `token_expired` so clients know to refresh).
 * Branches on jose's stable `code`, never on messages.
 */
import { TurnkeyError, unauthenticated, unavailable } from "../errors.ts";

/** 401 `invalid_token` with a generic message; `cause` keeps the detail for the log only. */
export function invalidToken(message = "invalid token", cause?: unknown): TurnkeyError {
  const err = unauthenticated(message, "invalid_token");
  if (cause !== undefined) Object.defineProperty(err, "cause", { value: cause, enumerable: false });
  return err;
}

/** 503 `identity_unavailable`: the identity provider could not be reached (DESIGN §7 rule 4). */
export function identityUnavailable(cause?: unknown): TurnkeyError {
  const err = unavailable("identity provider unavailable", "identity_unavailable");
  if (cause !== undefined) Object.defineProperty(err, "cause", { value: cause, enumerable: false });
  return err;
}

/**
 * Turn an error thrown by jose's `jwtVerify` into a `TurnkeyError`:
 * a `TurnkeyError` passes through; `ERR_JWT_EXPIRED` → 401 `token_expired`; any other
 * validation code → 401 `invalid_token`; anything else → 401 `invalid_token` too (fail closed).
 * Key-source failures must be mapped to 503 before they get here (see `JwtAuthenticator`).
 */
export function mapVerifyError(err: unknown): TurnkeyError {
  if (err instanceof TurnkeyError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ERR_JWT_EXPIRED") {
    const e = unauthenticated("token expired", "token_expired");
    Object.defineProperty(e, "cause", { value: err, enumerable: false });
    return e;
  }
  // ERR_JWS_*, ERR_JWT_*, ERR_JOSE_ALG_NOT_ALLOWED, ERR_JWKS_NO_MATCHING_KEY, and the unexpected.
  return invalidToken("invalid token", err);
}
