/**
 * The request authenticator: one `Authenticator` composed of a chain of bearer-token members and
 * the trusted-proxy headers (DESIGN §5).
 *
 * Order, first decisive answer wins:
 * 1. `Authorization` present → its bearer token goes down the chain
 *    `turn → bot → ...members → jwt`. A member returns `null` for a token that is not its kind
 *    (next member), a principal, or throws 401/503 for a token that is its kind but bad (stop).
 *    If every member passes, the token is 401 `invalid_token`.
 * 2. No `Authorization`, trusted peer with `X-Forwarded-User` → forwarded `user`.
 * 3. Otherwise → `null` (anonymous; routes decide whether that is a 401).
 *
 * Turn tokens and user JWTs cannot be confused: the turn member claims a token only by its
 * `aud`/`typ` (`turnkey-credentials` / `turnkey-turn+jwt`) and then verifies it with the turn key,
 * issuer and audience only; the JWT member verifies with the user issuer's keys and audience and
 * refuses anything for the turn audience. Claiming is routing, never trust: whichever member
 * claims a token verifies its signature before anything is believed.
 */
import { decodeJwt, decodeProtectedHeader } from "jose";
import type { Authenticator, Principal } from "./principal.ts";
import { TURN_TOKEN_AUDIENCE, TURN_TOKEN_TYPE, type TurnTokenIssuer } from "./turn-token.ts";
import type { JwtAuthenticator } from "./jwt.ts";
import type { BotTokenAuthenticator } from "./bot-tokens.ts";
import type { ForwardedHeadersAuthenticator } from "./forwarded.ts";
import { bearerToken } from "./bearer.ts";
import { invalidToken } from "./token-errors.ts";

export { bearerToken } from "./bearer.ts";

/** The request shape every authenticator takes. */
export type AuthRequest = { headers: Headers; remoteAddress?: string };

/** One link of the bearer chain (for example the Kubernetes TokenReview authenticator). */
export interface BearerAuthenticator {
  /** Short label for logs: `turn`, `bot`, `jwt`, `kubernetes`. */
  readonly name: string;
  /**
   * @returns the principal when the token is this member's kind and valid; `null` when it is
   *   not this member's kind (the next member is asked).
   * @throws TurnkeyError 401 `invalid_token`/`token_expired` for a token of this kind that fails
   *   verification, 503 `identity_unavailable` when it cannot be checked (ends the chain).
   */
  authenticateBearer(token: string, req: AuthRequest): Promise<Principal | null>;
}

/**
 * Whether a token *claims* to be a turn token (`aud` includes `turnkey-credentials` or `typ` is
 * `turnkey-turn+jwt`), read without verification: for routing only. Malformed input → false.
 */
export function looksLikeTurnToken(token: string): boolean {
  try {
    if (decodeProtectedHeader(token).typ === TURN_TOKEN_TYPE) return true;
    const { aud } = decodeJwt(token);
    return aud === TURN_TOKEN_AUDIENCE || (Array.isArray(aud) && aud.includes(TURN_TOKEN_AUDIENCE));
  } catch {
    return false;
  }
}

/** Chain member for turn tokens: claims by `looksLikeTurnToken`, verifies with the turn key. */
export function turnTokenMember(issuer: TurnTokenIssuer): BearerAuthenticator {
  return {
    name: "turn",
    async authenticateBearer(token) {
      if (!looksLikeTurnToken(token)) return null;
      const c = await issuer.verify(token);
      return { kind: "turn", userId: c.userId, project: c.project, session: c.session, runId: c.runId, tokenId: c.tokenId };
    },
  };
}

/** Chain member for runner bot tokens: a match is a `service` principal, anything else passes. */
export function botTokenMember(bots: BotTokenAuthenticator): BearerAuthenticator {
  return { name: "bot", authenticateBearer: async (token) => bots.principalFor(token) };
}

/** Chain member for user JWTs: never passes, so it belongs last. */
export function jwtMember(jwt: JwtAuthenticator): BearerAuthenticator {
  return { name: "jwt", authenticateBearer: (token) => jwt.verify(token) };
}

/** Options of `createAuthenticator`; each member is optional except turn tokens. */
export interface AuthenticatorOptions {
  turnTokens: TurnTokenIssuer;
  /** User JWTs (JWKS or development issuer); tried last. */
  jwt?: JwtAuthenticator;
  botTokens?: BotTokenAuthenticator;
  forwarded?: ForwardedHeadersAuthenticator;
  /** Further members tried after turn and bot tokens and before `jwt`, in order. */
  members?: readonly BearerAuthenticator[];
}

/**
 * Compose the request authenticator (order in the module comment).
 * @returns an `Authenticator` whose `authenticate` resolves to a principal or `null` (no
 *   credentials) and throws 401 `invalid_token` (malformed `Authorization`, unknown token),
 *   401 `token_expired`, or 503 `identity_unavailable`.
 * @example
 * const auth = createAuthenticator({ turnTokens, jwt, botTokens, forwarded });
 * const principal = await auth.authenticate({ headers: req.headers, remoteAddress });
 */
export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const chain: BearerAuthenticator[] = [
    turnTokenMember(opts.turnTokens),
    ...(opts.botTokens ? [botTokenMember(opts.botTokens)] : []),
    ...(opts.members ?? []),
    ...(opts.jwt ? [jwtMember(opts.jwt)] : []),
  ];
  return {
    async authenticate(req: AuthRequest): Promise<Principal | null> {
      const token = bearerToken(req.headers);
      if (token === null) return opts.forwarded ? opts.forwarded.authenticate(req) : null;
      for (const member of chain) {
        const principal = await member.authenticateBearer(token, req);
        if (principal) return principal;
      }
      throw invalidToken("unrecognised bearer token");
    },
  };
}
