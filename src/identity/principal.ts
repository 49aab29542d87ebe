/**
 * Who is calling, after authentication (DESIGN §1).
 * - `user`: a human, identified by a sanitised user ID.
 * - `turn`: a runner holding a turn token minted for one run; `userId` is the token's `sub`.
 * - `service`: a ServiceAccount / runner bot token; never a user, never an owner.
 */
export type Principal =
  | { kind: "user"; userId: string; userName: string; source: "jwt" | "dev" | "forwarded" | "kubernetes" }
  | { kind: "turn"; userId: string; project: string; session: string; runId: string; tokenId: string }
  | { kind: "service"; name: string; project?: string; session?: string };

/** A stable label for audit (hashed before it is written) and logs. */
export function principalSubject(p: Principal): string {
  switch (p.kind) {
    case "user":
      return `user:${p.userId}`;
    case "turn":
      return `turn:${p.userId}`;
    case "service":
      return `service:${p.name}`;
  }
}

/**
 * Authenticates a request. Implementations: development issuer / JWKS JWTs, turn tokens, bot
 * tokens, Kubernetes TokenReview.
 * @returns the principal, or `null` when no credentials were presented.
 * @throws TurnkeyError 401 (`invalid_token` / `token_expired`) for bad credentials, 503
 *   (`identity_unavailable`) when the identity provider cannot be reached (never a fallback).
 */
export interface Authenticator {
  authenticate(req: { headers: Headers; remoteAddress?: string }): Promise<Principal | null>;
}
