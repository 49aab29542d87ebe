/**
 * A single shared bearer token kept in a file, for machine callers that are not users or runners:
 * Prometheus scraping `/metrics` with `bearer_token_file` (`TURNKEY_METRICS_TOKEN_FILE`).
 *
 * The file is read on every check, so a rotated Kubernetes Secret mount takes effect without a
 * restart; it is validated once at start so a missing or weak token fails fast. Comparison is on
 * SHA-256 digests with `timingSafeEqual` (no length or prefix leak). Never logged.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import { B64TOKEN } from "./bearer.ts";

/** Shortest accepted token, characters (as bot tokens). */
export const MIN_STATIC_TOKEN_LENGTH = 16;

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();

/**
 * Read and check the token in `path`: the file's content, trimmed, must be an RFC 6750 b64token
 * of at least `MIN_STATIC_TOKEN_LENGTH` characters.
 * @throws ConfigError naming `setting` when the file cannot be read or the token is unfit (the
 *   message never contains the token).
 */
export function readStaticToken(path: string, setting: string): string {
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new ConfigError(setting, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  if (token.length < MIN_STATIC_TOKEN_LENGTH || !B64TOKEN.test(token))
    throw new ConfigError(setting, `the token in ${path} must be a b64token of at least ${MIN_STATIC_TOKEN_LENGTH} characters`);
  return token;
}

/**
 * A checker for `Authorization: Bearer <token>` against the token in `path` (module doc).
 * @throws ConfigError at creation, as `readStaticToken`.
 * @returns `(headers) => boolean`: true only for the exact token; false for none, another, or
 *   when the file has become unreadable or unfit since start (fail closed).
 */
export function staticBearerChecker(path: string, setting: string): (headers: Headers) => boolean {
  readStaticToken(path, setting);
  return (headers) => {
    const m = /^Bearer +(\S+)$/i.exec(headers.get("authorization") ?? "");
    if (!m) return false;
    let expected: string;
    try {
      expected = readStaticToken(path, setting);
    } catch {
      return false;
    }
    return timingSafeEqual(sha256(m[1]!), sha256(expected));
  };
}
