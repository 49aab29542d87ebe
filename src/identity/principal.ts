/**
 * Who is calling, after authentication (DESIGN §1).
 * - `user`: a human, identified by a sanitised user ID. `username`/`groups` are the identity as
 *   the identity provider named it (e.g. `alice@example.com`, `oidc:alice`), when known: Kubernetes
 *   RBAC binds those, not the sanitised ID, so SubjectAccessReviews must use them (issue 4 §2).
 * - `turn`: a runner holding a turn token minted for one run; `userId` is the token's `sub`.
 * - `service`: a ServiceAccount / runner bot token; never a user, never an owner.
 */
export type Principal =
  | { kind: "user"; userId: string; userName: string; source: "jwt" | "dev" | "forwarded" | "kubernetes"; username?: string; groups?: string[]; uid?: string; extra?: Record<string, string[]> }
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
 * The Kubernetes identity of a user: the original username and groups, and the TokenReview's
 * `uid`/`extra` when it gave them (see `KubeSubject`). `extra` carries e.g. OpenShift's scopes of a
 * scoped token, which the authorizer needs to limit the token to them.
 */
export interface UserSubject {
  username: string;
  groups?: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

/**
 * The identity to run access reviews for: the principal's original `username`/`groups` when its
 * authenticator knew them, else `undefined` (stores then use the sanitised user ID).
 * @example subjectOf({ kind: "user", userId: "alice-example.com", userName: "Alice", source: "jwt", username: "alice@example.com" })
 *   // → { username: "alice@example.com" }
 */
export function subjectOf(p: { username?: string; groups?: string[]; uid?: string; extra?: Record<string, string[]> }): UserSubject | undefined {
  if (!p.username) return undefined;
  return {
    username: p.username,
    ...(p.groups?.length ? { groups: [...p.groups] } : {}),
    ...(p.uid ? { uid: p.uid } : {}),
    ...(p.extra && Object.keys(p.extra).length ? { extra: structuredClone(p.extra) } : {}),
  };
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
