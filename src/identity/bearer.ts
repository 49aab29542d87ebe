/**
 * The `Authorization: Bearer` header (RFC 6750 §2.1), shared by every bearer authenticator.
 */
import { invalidToken } from "./token-errors.ts";

/** RFC 6750 §2.1 `b64token`: the characters a bearer token may contain. */
export const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The bearer token of a request.
 * The scheme is matched case-insensitively (RFC 9110 §11.1); exactly one space-separated token.
 * @returns the token, or `null` when there is no `Authorization` header at all.
 * @throws TurnkeyError 401 `invalid_token` when the header is present but empty, uses another
 *   scheme (`Basic`…), or the token is not a `b64token`.
 * @example
 * bearerToken(new Headers({ authorization: "Bearer abc" })); // "abc"
 */
export function bearerToken(headers: Headers): string | null {
  const value = headers.get("authorization");
  if (value === null) return null;
  const m = /^Bearer +(\S+) *$/i.exec(value);
  if (!m || !B64TOKEN.test(m[1]!)) throw invalidToken("expected Authorization: Bearer <token>");
  return m[1]!;
}
