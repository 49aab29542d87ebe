/**
 * Sessions: an agent workspace in a project with one owner and collaborators (DESIGN §1).
 */

/** `edit` may send turns; `view` may only watch. */
export type CollaboratorRole = "edit" | "view";

/** A user shared into a session with a role. */
export interface Collaborator {
  userId: string;
  role: CollaboratorRole;
}

/** A session as the API returns it. */
export interface Session {
  project: string;
  name: string;
  ownerId: string;
  ownerName?: string;
  collaborators: Collaborator[];
  /** ISO 8601. */
  createdAt: string;
  /** The backend's ID of this incarnation of the session (Kubernetes `metadata.uid`), if it has one. */
  uid?: string;
}

/**
 * Which incarnation of a session this is: a session deleted and created again under the same name
 * is a different one (its uid, else its creation time, differs). Stored events and message
 * senders belong to one incarnation and must never reach the next one's participants.
 */
export const incarnationOf = (s: Pick<Session, "uid" | "createdAt">): string => s.uid ?? s.createdAt;

/**
 * What a user may do in a session, as the RBAC layer sees it. In the embedded backend it is
 * derived from owner + collaborators; in Kubernetes from SubjectAccessReviews.
 */
export type SessionRole = "owner" | CollaboratorRole | "none";

/**
 * Session storage. Names are validated DNS-1123 labels before they reach a store.
 * Errors: `TurnkeyError` 409 `session_exists` on create of an existing name, 404
 * `session_not_found` for writes to a missing session, 405 `read_only_backend` where the backend
 * does not allow writes, 503 `store_unavailable` when the store cannot be reached.
 */
export interface SessionStore {
  readonly readOnly: boolean;
  get(project: string, session: string): Promise<Session | null>;
  create(project: string, session: string, owner: { userId: string; userName?: string }): Promise<Session>;
  list(project: string): Promise<Session[]>;
  setCollaborator(project: string, session: string, userId: string, role: CollaboratorRole): Promise<Session>;
  removeCollaborator(project: string, session: string, userId: string): Promise<Session>;
  /**
   * The role `userId` holds in the session; `none` for strangers and missing sessions.
   * @param subject the user's original username and groups (Principal `username`/`groups`), for
   *   backends that authorise by the identity provider's names (Kubernetes SubjectAccessReviews);
   *   the embedded backend ignores it.
   */
  roleOf(project: string, session: string, userId: string, subject?: { username: string; groups?: string[] }): Promise<SessionRole>;
}
