/**
 * The credential-access decision of DESIGN §2.3, as a pure function of plain data: the HTTP layer
 * gathers the inputs, calls it, and maps the decision to a status. First matching row wins.
 *
 * | principal                 | effective user E                         | allowed iff                                                    |
 * |---------------------------|------------------------------------------|----------------------------------------------------------------|
 * | none / invalid / expired  | -                                        | 401                                                            |
 * | identity lookup failed    | -                                        | 503, never treated as a bot                                    |
 * | turn (project/session/run)| X-Runner-Current-User, else token `sub`  | run active with this token's jti, same project/session, run user = sub, E = sub |
 * | service                   | X-Runner-Current-User, else the owner    | an active run in this project/session has user E               |
 * | user U                    | X-Runner-Current-User, else the owner    | U = E and U may send turns (owner or edit)                     |
 *
 * Nobody ever receives another user's credentials; the owner is not special outside their own
 * turns; no header can widen access (the security finding this gateway exists for).
 */
import type { Principal } from "../identity/principal.ts";
import type { SessionRole } from "../sessions/types.ts";

/** The data a decision needs. `runUserId`/`activeRunUserIds` come from the active-run map. */
export interface CredentialAccessInput {
  /** Result of authentication: a principal, or why there is none. */
  auth: { principal: Principal } | { failure: "unauthenticated" | "invalid_token" | "identity_unavailable" };
  project: string;
  session: string;
  /** Owner of the session, or `null` when the session does not exist. */
  ownerId: string | null;
  /** Sanitised `X-Runner-Current-User`, when the header was sent. */
  runnerCurrentUser?: string;
  /**
   * For a `turn` principal: its run (user and the `jti` of the token minted for it) if that run
   * is active now, else undefined.
   */
  turnRun?: { userId: string; tokenId: string };
  /** Users of every active run in this project/session (for `service` principals). */
  activeRunUserIds: readonly string[];
  /** For a `user` principal: their role in the session. */
  userRole?: SessionRole;
}

/** Machine reason of a decision, written to the audit record. */
export type CredentialAccessReason =
  | "unauthenticated"
  | "invalid_token"
  | "identity_unavailable"
  | "session_not_found"
  | "turn_wrong_session"
  | "turn_not_active"
  | "turn_token_superseded"
  | "turn_user_mismatch"
  | "effective_user_mismatch"
  | "no_active_run_for_user"
  | "service_wrong_session"
  | "not_sender"
  | "cannot_send_turns"
  | "turn_sender"
  | "active_run_user"
  | "self_with_send_right";

/** Allow (with the effective user) or deny (with the HTTP status). */
export type CredentialAccessDecision =
  | { allow: true; effectiveUserId: string; reason: CredentialAccessReason }
  | { allow: false; status: 401 | 403 | 404 | 503; reason: CredentialAccessReason; effectiveUserId?: string };

const deny = (status: 401 | 403 | 404 | 503, reason: CredentialAccessReason, effectiveUserId?: string): CredentialAccessDecision => ({
  allow: false,
  status,
  reason,
  ...(effectiveUserId !== undefined ? { effectiveUserId } : {}),
});

/**
 * Decide whether the caller may read credentials in this session, and for whom.
 * @returns allow with the effective user whose credentials are to be read, or deny with the
 *   HTTP status (401, 403, 404, 503) and a machine reason for the audit record.
 */
export function decideCredentialAccess(input: CredentialAccessInput): CredentialAccessDecision {
  if ("failure" in input.auth) {
    return input.auth.failure === "identity_unavailable" ? deny(503, "identity_unavailable") : deny(401, input.auth.failure);
  }
  const p = input.auth.principal;
  const header = input.runnerCurrentUser;

  if (p.kind === "turn") {
    // A turn token is bound to one project/session/run; anywhere else it is worthless.
    if (p.project !== input.project || p.session !== input.session) return deny(403, "turn_wrong_session");
    if (input.turnRun === undefined) return deny(401, "turn_not_active");
    // Only the token minted for this very run counts: a token of an earlier run that reused the
    // run ID (e.g. across a gateway restart, which forgets revocations) is dead.
    if (input.turnRun.tokenId !== p.tokenId) return deny(401, "turn_token_superseded");
    if (input.turnRun.userId !== p.userId) return deny(403, "turn_user_mismatch");
    const effective = header ?? p.userId;
    if (effective !== p.userId) return deny(403, "effective_user_mismatch", effective);
    return { allow: true, effectiveUserId: effective, reason: "turn_sender" };
  }

  if (input.ownerId === null) return deny(404, "session_not_found");

  if (p.kind === "service") {
    if ((p.project !== undefined && p.project !== input.project) || (p.session !== undefined && p.session !== input.session))
      return deny(403, "service_wrong_session");
    const effective = header ?? input.ownerId;
    if (!input.activeRunUserIds.includes(effective)) return deny(403, "no_active_run_for_user", effective);
    return { allow: true, effectiveUserId: effective, reason: "active_run_user" };
  }

  const effective = header ?? input.ownerId;
  if (p.userId !== effective) return deny(403, "not_sender", effective);
  if (input.userRole !== "owner" && input.userRole !== "edit") return deny(403, "cannot_send_turns", effective);
  return { allow: true, effectiveUserId: effective, reason: "self_with_send_right" };
}
