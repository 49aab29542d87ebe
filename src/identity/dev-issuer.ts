/**
 * The development user-token issuer of the embedded default (DESIGN §5): `turnkey token --user
 * alice` prints a token minted here, and `JwtAuthenticator` verifies it against `jwks()` when no
 * JWKS URL is configured. Not an identity provider: whoever can run the CLI on the data dir can
 * mint any user, which is the point in development and why production sets `TURNKEY_JWKS_URL` or
 * `TURNKEY_OIDC_DISCOVERY`.
 */
import { SignJWT, type JSONWebKeySet } from "jose";
import type { Config } from "../config.ts";
import { DEV_ISSUER_KEY_FILE, loadOrCreateSigningKey, type SigningKey } from "./keys.ts";

/** Default lifetime of a development user token: 12 hours, in seconds. */
export const DEV_TOKEN_TTL_SECONDS = 12 * 60 * 60;

/** Input of `DevIssuer.mint`. */
export interface DevMintInput {
  /** Goes into `sub` and `preferred_username` as given; verifiers sanitise it. Non-empty. */
  userId: string;
  /** `name` claim (display name). */
  name?: string;
  /** `email` claim. */
  email?: string;
  /** Lifetime in seconds; default `DEV_TOKEN_TTL_SECONDS` (12 h). */
  ttlSeconds?: number;
}

/**
 * The embedded default's development issuer (DESIGN §5): ES256 user tokens signed with the key in
 * `<dataDir>/dev-issuer.jwk`, verified by `JwtAuthenticator`. Not for production identities.
 */
export class DevIssuer {
  #key: SigningKey;
  #issuer: string;
  #audience: string;

  /**
   * @param key the ES256 key (see `DevIssuer.open` for the usual data-dir key).
   * @param opts `issuer`/`audience` as pinned by the verifier (`Config.jwtIssuer`/`jwtAudience`).
   */
  constructor(key: SigningKey, opts: { issuer: string; audience: string }) {
    this.#key = key;
    this.#issuer = opts.issuer;
    this.#audience = opts.audience;
  }

  /** The issuer with its key from `<dataDir>/dev-issuer.jwk` (created on first start, 0600). */
  static async open(cfg: Pick<Config, "dataDir" | "jwtIssuer" | "jwtAudience">): Promise<DevIssuer> {
    const key = await loadOrCreateSigningKey(cfg.dataDir, DEV_ISSUER_KEY_FILE);
    return new DevIssuer(key, { issuer: cfg.jwtIssuer, audience: cfg.jwtAudience });
  }

  /** Pinned `iss` of minted tokens. */
  get issuer(): string {
    return this.#issuer;
  }

  /** Pinned `aud` of minted tokens. */
  get audience(): string {
    return this.#audience;
  }

  /**
   * Mint a user token (RFC 7519 JWT, RFC 7515 JWS compact, ES256, header `kid` and `typ: JWT`)
   * with `iss`, `aud`, `sub` = `preferred_username` = `userId`, optional `name`/`email`, `iat`,
   * `exp` = now + ttl.
   * @throws TypeError for an empty `userId` or a non-positive/non-integer `ttlSeconds`.
   * @example
   * const token = await issuer.mint({ userId: "alice", name: "Alice" });
   */
  async mint(input: DevMintInput): Promise<string> {
    const ttl = input.ttlSeconds ?? DEV_TOKEN_TTL_SECONDS;
    if (!input.userId) throw new TypeError("userId must be non-empty");
    if (!Number.isInteger(ttl) || ttl <= 0) throw new TypeError("ttlSeconds must be a positive whole number");
    const claims: Record<string, string> = { preferred_username: input.userId };
    if (input.name !== undefined) claims.name = input.name;
    if (input.email !== undefined) claims.email = input.email;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: this.#key.kid, typ: "JWT" })
      .setIssuer(this.#issuer)
      .setAudience(this.#audience)
      .setSubject(input.userId)
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .sign(this.#key.privateKey);
  }

  /** The public key set (`{keys: [publicJwk]}`), for `GET /.well-known/jwks.json` and verifiers. */
  jwks(): JSONWebKeySet {
    return { keys: [{ ...this.#key.publicJwk }] };
  }
}
