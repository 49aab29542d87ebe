/**
 * Session-level RBAC (DESIGN §1): what a role may do. Pure; imports only types.
 * - read/watch: owner, edit, view
 * - send turns / interrupt: owner, edit
 * - manage collaborators: owner
 */
import type { SessionRole } from "../sessions/types.ts";

/** What a caller wants to do in a session. */
export type SessionAction = "read" | "watch" | "run" | "interrupt" | "manage";

const ALLOWED: Record<SessionAction, readonly SessionRole[]> = {
  read: ["owner", "edit", "view"],
  watch: ["owner", "edit", "view"],
  run: ["owner", "edit"],
  interrupt: ["owner", "edit"],
  manage: ["owner"],
};

/** True iff `role` may perform `action`. `none` may do nothing. */
export function mayPerform(role: SessionRole, action: SessionAction): boolean {
  return ALLOWED[action].includes(role);
}
