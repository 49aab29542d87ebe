/**
 * User bearer JWTs (DESIGN §5 `jwt`): `Authorization: Bearer <jwt>` (RFC 6750 §2.1) verified by
 * jose against a remote JWKS (`TURNKEY_JWKS_URL`, the production IdP), a discovered key set
 * (`keySource`: the cluster's service-account issuer with `TURNKEY_OIDC_DISCOVERY=serviceaccount`,
 * issue 4 §4) or the development issuer's key, with pinned issuer, audience and algorithms and a
 * 30 s clock tolerance.
 *
 * Fail closed (DESIGN §7 rule 4): when the keys cannot be fetched or discovered (timeout, refused,
 * non-200, unparsable, a discovered issuer other than the pinned one) the request gets 503
 * `identity_unavailable`, never a fallback identity.
 *
 * A user claim naming a Kubernetes service account (`system:serviceaccount:…`) is refused: service
 * accounts are classified by TokenReview (src/identity/token-review.ts), never made users here.
 */
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { ConfigError, TurnkeyError } from "../errors.ts";
import type { Config } from "../config.ts";
import { sanitizeDisplayName, sanitizeUserId } from "../names.ts";
import type { Authenticator, Principal } from "./principal.ts";
import type { DevIssuer } from "./dev-issuer.ts";
import { TURN_TOKEN_AUDIENCE, TURN_TOKEN_TYPE } from "./turn-token.ts";
import { identityUnavailable, invalidToken, mapVerifyError } from "./token-errors.ts";
import { bearerToken } from "./bearer.ts";

/** Allowed clock skew when checking `exp`/`nbf`/`iat`, seconds. */
export const JWT_CLOCK_TOLERANCE_SECONDS = 30;
/** Default timeout of one JWKS fetch, ms (jose's default is 5000). */
export const JWKS_TIMEOUT_MS = 5000;
/** Algorithms accepted from a remote JWKS. `none` and HMAC are never accepted (RFC 8725 §3.1). */
export const JWKS_ALGORITHMS = ["ES256", "RS256"] as const;

/** jose codes raised by a key set that mean "the token names a key we do not have" (a token fault). */
const TOKEN_FAULT_KEY_CODES: ReadonlySet<string> = new Set(["ERR_JWKS_NO_MATCHING_KEY", "ERR_JWKS_MULTIPLE_MATCHING_KEYS"]);

/** Options of `JwtAuthenticator`. */
export interface JwtAuthenticatorOptions {
  /** Pinned `iss`, `aud`, the JWKS URL (unset = dev issuer) and the user-ID claims in order. */
  config: Pick<Config, "jwtIssuer" | "jwtAudience" | "jwksUrl" | "userClaims"> & Partial<Pick<Config, "jwtUsernamePrefix" | "jwtGroupsPrefix">>;
  /**
   * Keys from issuer discovery, used when `config.jwksUrl` is unset: called per verification (the
   * source memoises), its `issuer` must equal `config.jwtIssuer`. A rejection is 503. Example:
   * `() => kube.serviceAccountIssuer()` (src/kubernetes/oidc-discovery.ts).
   */
  keySource?: () => Promise<{ issuer: string; keys: JWTVerifyGetKey }>;
  /** Used when neither `config.jwksUrl` nor `keySource` is given: its key set verifies tokens (ES256 only). */
  devIssuer?: DevIssuer;
  /** Timeout of one JWKS fetch, ms; default `JWKS_TIMEOUT_MS`. */
  jwksTimeoutMs?: number;
  /** How long a fetched JWKS is reused, ms; default jose's 10 min. */
  jwksCacheMaxAgeMs?: number;
}

/**
 * Verifies user JWTs and maps them to `user` principals.
 * User ID: the first of `config.userClaims` (default `preferred_username`, `email`, `sub`) that is
 * a string and non-empty after `sanitizeUserId` (so `alice@example.com` → `alice-example.com`,
 * matching the upstream platform's Secret keys). User name: the `name` claim, else the user ID.
 * @example
 * const jwt = new JwtAuthenticator({ config: cfg, devIssuer });
 * const p = await jwt.verify(token); // { kind: "user", userId: "alice", userName: "Alice", source: "dev" }
 */
export class JwtAuthenticator implements Authenticator {
  #getKey: JWTVerifyGetKey;
  #algorithms: string[];
  #issuer: string;
  #audience: string;
  #claims: readonly string[];
  #source: "jwt" | "dev";
  #usernamePrefix: string;
  #groupsPrefix: string;

  /** @throws ConfigError when no key source is given or the audience is the turn-token audience. */
  constructor(opts: JwtAuthenticatorOptions) {
    const { config } = opts;
    if (config.jwtAudience === TURN_TOKEN_AUDIENCE)
      throw new ConfigError("TURNKEY_JWT_AUDIENCE", `"${TURN_TOKEN_AUDIENCE}" is reserved for turn tokens`);
    this.#issuer = config.jwtIssuer;
    this.#audience = config.jwtAudience;
    this.#claims = [...config.userClaims];
    this.#usernamePrefix = config.jwtUsernamePrefix ?? "";
    this.#groupsPrefix = config.jwtGroupsPrefix ?? "";
    if (config.jwksUrl) {
      const remote = createRemoteJWKSet(new URL(config.jwksUrl), {
        timeoutDuration: opts.jwksTimeoutMs ?? JWKS_TIMEOUT_MS,
        ...(opts.jwksCacheMaxAgeMs !== undefined ? { cacheMaxAge: opts.jwksCacheMaxAgeMs } : {}),
      });
      this.#getKey = keyFaultsAre503(remote);
      this.#algorithms = [...JWKS_ALGORITHMS];
      this.#source = "jwt";
    } else if (opts.keySource) {
      const source = opts.keySource;
      const pinned = config.jwtIssuer;
      this.#getKey = async (header, token) => {
        let found: { issuer: string; keys: JWTVerifyGetKey };
        try {
          found = await source();
        } catch (err) {
          throw err instanceof TurnkeyError ? err : identityUnavailable(err);
        }
        // Discovery names the issuer; we trust it only if it is the one we were told to pin.
        if (found.issuer !== pinned) throw identityUnavailable(new Error(`discovered issuer ${found.issuer} is not TURNKEY_JWT_ISSUER`));
        return keyFaultsAre503(found.keys)(header, token);
      };
      this.#algorithms = [...JWKS_ALGORITHMS];
      this.#source = "jwt";
    } else if (opts.devIssuer) {
      this.#getKey = createLocalJWKSet(opts.devIssuer.jwks());
      this.#algorithms = ["ES256"];
      this.#source = "dev";
    } else {
      throw new ConfigError("TURNKEY_JWKS_URL", "no JWKS URL and no development issuer to verify user tokens with");
    }
  }

  /**
   * Authenticate from `Authorization: Bearer <jwt>`.
   * @returns `null` without an Authorization header.
   * @throws TurnkeyError as `bearerToken` and `verify` do.
   */
  async authenticate(req: { headers: Headers; remoteAddress?: string }): Promise<Principal | null> {
    const token = bearerToken(req.headers);
    return token === null ? null : this.verify(token);
  }

  /**
   * Verify one user JWT (RFC 7519 §7.2, via jose `jwtVerify`) and build the principal.
   * @throws TurnkeyError 401 `token_expired` past `exp` + 30 s; 401 `invalid_token` for a bad
   *   signature, wrong `iss`/`aud`, an algorithm outside the pinned list (`none`, HS256…), a turn
   *   token, or no usable user claim; 503 `identity_unavailable` when the JWKS cannot be fetched.
   */
  async verify(token: string): Promise<Principal> {
    let payload: JWTPayload;
    let typ: string | undefined;
    try {
      const result = await jwtVerify(token, this.#getKey, {
        algorithms: this.#algorithms,
        issuer: this.#issuer,
        audience: this.#audience,
        clockTolerance: JWT_CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ["exp"],
      });
      payload = result.payload;
      typ = result.protectedHeader.typ;
    } catch (err) {
      throw mapVerifyError(err);
    }
    // Belt and braces: the audience pin already excludes turn tokens; a token that is *also*
    // for the credentials audience, or typed as a turn token, is still not a user token.
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (aud.includes(TURN_TOKEN_AUDIENCE) || typ === TURN_TOKEN_TYPE) throw invalidToken("not a user token");
    const { userId, raw } = this.#userId(payload);
    if (!userId) throw invalidToken("token has no usable user claim");
    // `system:` names belong to Kubernetes itself (service accounts, system:admin, system:masters):
    // an IdP claim must never become one in an access review (found by a break-it review).
    if (raw.startsWith("system:")) throw invalidToken("a user claim in the reserved system: namespace is not a user");
    const name = typeof payload.name === "string" ? sanitizeDisplayName(payload.name) : "";
    const claimed = Array.isArray(payload.groups) ? payload.groups.filter((g): g is string => typeof g === "string" && g.length > 0) : [];
    const groups = claimed.filter((g) => !g.startsWith("system:")).map((g) => this.#groupsPrefix + g);
    // `username`/`groups` as the API server names this IdP's users (its --oidc-username-prefix and
    // --oidc-groups-prefix, mirrored by TURNKEY_JWT_USERNAME_PREFIX/GROUPS_PREFIX): access reviews bind those.
    return { kind: "user", userId, userName: name || userId, source: this.#source, username: this.#usernamePrefix + raw, ...(groups.length ? { groups } : {}) };
  }

  /**
   * The sanitised user ID and the raw claim value it came from (`""` when none is usable). An
   * `email` is used only when `email_verified` (OIDC Core §5.1) is absent, `true` or `"true"`
   * (some IdPs send strings): anyone can put any address on an account at many IdPs, and it would
   * name that address's owner. `false`, `"false"`, `0`, `null`… all skip it.
   */
  #userId(payload: JWTPayload): { userId: string; raw: string } {
    for (const claim of this.#claims) {
      const v = payload[claim];
      if (typeof v !== "string") continue;
      if (claim === "email" && "email_verified" in payload && payload.email_verified !== true && payload.email_verified !== "true") continue;
      const id = sanitizeUserId(v);
      if (id) return { userId: id, raw: v };
    }
    return { userId: "", raw: "" };
  }
}

/**
 * Wrap a jose key resolver so that failures to *get* keys (fetch errors, timeouts, bad JWKS) are
 * 503 `identity_unavailable`, while "no key matches the token's `kid`" stays the token's fault (401).
 */
function keyFaultsAre503(keys: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await keys(header, token);
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === "string" && TOKEN_FAULT_KEY_CODES.has(code)) throw err;
      throw identityUnavailable(err);
    }
  };
}
