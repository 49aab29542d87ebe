/**
 * Turn tokens (DESIGN §1): short-lived JWTs minted when a turn starts and handed to its runner,
 * which presents them on credential requests. ES256 with the gateway's own key
 * (`<dataDir>/turn-signing.jwk`), `iss` = the gateway, `aud` = `turnkey-credentials`,
 * `typ` = `turnkey-turn+jwt` (explicit typing, RFC 8725 §3.11), `sub` = the sender, claims
 * `project`, `session`, `run`, `jti`, `exp` = the turn deadline.
 *
 * A valid signature is not enough: a turn token is good only while its run is active. `verify`
 * checks signature, claims, expiry and revocation; the caller must also look the run up in the
 * `ActiveRunMap` (`get(project, session, runId)`) and require its `userId` and `tokenId` to equal
 * the token's `sub` and `jti` (`decideCredentialAccess` does so via `turnRun`). Teardown calls
 * `revoke` so a token copied out of a finished turn is refused even before its `exp`; the `jti`
 * check also kills a token whose run ID is reused later (revocations do not survive a restart).
 */
import { SignJWT, jwtVerify, createLocalJWKSet, type JSONWebKeySet, type JWTPayload } from "jose";
import { randomUUID } from "node:crypto";
import type { Config } from "../config.ts";
import { TURN_SIGNING_KEY_FILE, loadOrCreateSigningKey, type SigningKey } from "./keys.ts";
import { invalidToken, mapVerifyError } from "./token-errors.ts";

/** `aud` of every turn token; never accepted as a user token's audience. */
export const TURN_TOKEN_AUDIENCE = "turnkey-credentials";
/** Default `iss` of turn tokens (the gateway itself). */
export const TURN_TOKEN_ISSUER = "turnkey";
/** JWS `typ` header of turn tokens (RFC 8725 §3.11 explicit typing). */
export const TURN_TOKEN_TYPE = "turnkey-turn+jwt";

/** Input of `TurnTokenIssuer.mint`. */
export interface TurnMintInput {
  /** The sender's sanitised user ID (`sub`). */
  userId: string;
  project: string;
  session: string;
  runId: string;
  /** Turn deadline, epoch ms; becomes `exp` (rounded down to the second). Must be in the future. */
  deadline: number;
}

/** A minted turn token. */
export interface MintedTurnToken {
  /** Compact JWS; secret: goes to the runner only, never into logs or events. */
  token: string;
  /** The `jti` (UUID v4); recorded in the active run as `tokenId`. */
  tokenId: string;
  /** `exp` in epoch ms. */
  expiresAt: number;
}

/** The verified content of a turn token. */
export interface TurnTokenClaims {
  userId: string;
  project: string;
  session: string;
  runId: string;
  tokenId: string;
  /** `exp` in epoch ms. */
  expiresAt: number;
}

/** Options of `TurnTokenIssuer`. */
export interface TurnTokenOptions {
  /** `iss` of minted tokens, pinned on verify; default `TURN_TOKEN_ISSUER`. */
  issuer?: string;
  /** Clock, epoch ms; default `Date.now` (tests move it). */
  now?: () => number;
}

/**
 * Mints, verifies and revokes turn tokens (see the module doc). Revocations are held in memory
 * until the token's `exp`; verification errors are TurnkeyError 401 `invalid_token`/`token_expired`.
 */
export class TurnTokenIssuer {
  #key: SigningKey;
  #keySet: ReturnType<typeof createLocalJWKSet>;
  #issuer: string;
  #now: () => number;
  /** jti → exp (ms) of tokens minted here and not revoked, so `revoke` knows how long to remember. */
  #issued = new Map<string, number>();
  /** jti → exp (ms); entries are pruned once past exp, when the token is refused as expired anyway. */
  #revoked = new Map<string, number>();

  constructor(key: SigningKey, opts: TurnTokenOptions = {}) {
    this.#key = key;
    this.#keySet = createLocalJWKSet({ keys: [key.publicJwk] });
    this.#issuer = opts.issuer ?? TURN_TOKEN_ISSUER;
    this.#now = opts.now ?? Date.now;
  }

  /** The issuer with its key from `<dataDir>/turn-signing.jwk` (created on first start, 0600). */
  static async open(cfg: Pick<Config, "dataDir">, opts: TurnTokenOptions = {}): Promise<TurnTokenIssuer> {
    return new TurnTokenIssuer(await loadOrCreateSigningKey(cfg.dataDir, TURN_SIGNING_KEY_FILE), opts);
  }

  /**
   * Mint the token for one run.
   * @throws TypeError when a field is empty or `deadline` is not in the future.
   * @example
   * const { token, tokenId } = await turns.mint({ userId: "alice", project: "p", session: "s", runId, deadline });
   */
  async mint(input: TurnMintInput): Promise<MintedTurnToken> {
    for (const f of ["userId", "project", "session", "runId"] as const)
      if (typeof input[f] !== "string" || input[f] === "") throw new TypeError(`${f} must be non-empty`);
    const now = this.#now();
    const exp = Math.floor(input.deadline / 1000);
    if (!Number.isFinite(input.deadline) || exp * 1000 <= now) throw new TypeError("deadline must be in the future");
    const tokenId = randomUUID();
    const token = await new SignJWT({ project: input.project, session: input.session, run: input.runId })
      .setProtectedHeader({ alg: "ES256", kid: this.#key.kid, typ: TURN_TOKEN_TYPE })
      .setIssuer(this.#issuer)
      .setAudience(TURN_TOKEN_AUDIENCE)
      .setSubject(input.userId)
      .setJti(tokenId)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(exp)
      .sign(this.#key.privateKey);
    this.#prune(now);
    this.#issued.set(tokenId, exp * 1000);
    return { token, tokenId, expiresAt: exp * 1000 };
  }

  /**
   * Verify a turn token: ES256 signature by this gateway's key, `typ`, `iss`, `aud`, `exp` (no
   * clock tolerance: the same clock signs and checks), the claims' shapes, and not revoked.
   * Does NOT check that the run is active: the caller does, with the `ActiveRunMap`.
   * @throws TurnkeyError 401 `token_expired` past `exp`; 401 `invalid_token` otherwise (bad
   *   signature or key, wrong `typ`/`iss`/`aud`, missing claims, revoked).
   */
  async verify(token: string): Promise<TurnTokenClaims> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keySet, {
        algorithms: ["ES256"],
        issuer: this.#issuer,
        audience: TURN_TOKEN_AUDIENCE,
        typ: TURN_TOKEN_TYPE,
        requiredClaims: ["sub", "exp", "jti"],
        currentDate: new Date(this.#now()),
      }));
    } catch (err) {
      throw mapVerifyError(err);
    }
    const { sub, jti, exp, project, session, run } = payload;
    if (![sub, jti, project, session, run].every((v) => typeof v === "string" && v !== "") || typeof exp !== "number")
      throw invalidToken("invalid turn token claims");
    this.#prune(this.#now());
    if (this.#revoked.has(jti as string)) throw invalidToken("turn token revoked");
    return {
      userId: sub as string,
      project: project as string,
      session: session as string,
      runId: run as string,
      tokenId: jti as string,
      expiresAt: exp * 1000,
    };
  }

  /**
   * Revoke a token by `jti` (idempotent). It is remembered until its `exp`, then forgotten, so
   * memory is bounded by the tokens minted within one turn timeout. A `tokenId` this instance did
   * not mint is remembered for `fallbackTtlMs` (default 24 h).
   */
  revoke(tokenId: string, fallbackTtlMs = 24 * 60 * 60 * 1000): void {
    const now = this.#now();
    this.#prune(now);
    const exp = this.#issued.get(tokenId) ?? this.#revoked.get(tokenId) ?? now + fallbackTtlMs;
    this.#issued.delete(tokenId);
    this.#revoked.set(tokenId, exp);
  }

  /** Whether `tokenId` is currently in the revocation set (for tests and diagnostics). */
  isRevoked(tokenId: string): boolean {
    this.#prune(this.#now());
    return this.#revoked.has(tokenId);
  }

  /** Number of remembered tokens (issued + revoked), to show memory stays bounded. */
  get trackedCount(): number {
    return this.#issued.size + this.#revoked.size;
  }

  /** The public key set of turn tokens (a remote runner never needs it; offered for tooling). */
  jwks(): JSONWebKeySet {
    return { keys: [{ ...this.#key.publicJwk }] };
  }

  #prune(now: number): void {
    for (const map of [this.#issued, this.#revoked]) for (const [id, exp] of map) if (exp <= now) map.delete(id);
  }
}
