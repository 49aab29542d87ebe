/**
 * The credential decision table of DESIGN §2.3, one row per case. Session `p/s`, owner `alice`,
 * collaborators `bob` (edit) and `carol` (view); `dave` is a stranger.
 */
import { describe, expect, test } from "bun:test";
import { decideCredentialAccess, type CredentialAccessInput } from "../../src/rbac/credential-access.ts";
import type { Principal } from "../../src/identity/principal.ts";

const user = (userId: string): Principal => ({ kind: "user", userId, userName: userId, source: "jwt" });
const turn = (userId: string, project = "p", session = "s", runId = "r1"): Principal => ({ kind: "turn", userId, project, session, runId, tokenId: "j1" });
const service = (extra: { project?: string; session?: string } = {}): Principal => ({ kind: "service", name: "runner-bot", ...extra });
const roles: Record<string, "owner" | "edit" | "view" | "none"> = { alice: "owner", bob: "edit", carol: "view", dave: "none" };

type Row = {
  name: string;
  auth: CredentialAccessInput["auth"];
  header?: string;
  /** User of the turn token's run if it is active now. */
  runUser?: string;
  /** `jti` of the token minted for that run (default: the principal's, "j1"). */
  runTokenId?: string;
  active?: string[];
  ownerId?: string | null;
  expect: { allow: true; user: string } | { allow: false; status: number; reason: string };
};

const rows: Row[] = [
  // Authentication failures
  { name: "no token → 401", auth: { failure: "unauthenticated" }, expect: { allow: false, status: 401, reason: "unauthenticated" } },
  { name: "invalid or expired token → 401", auth: { failure: "invalid_token" }, expect: { allow: false, status: 401, reason: "invalid_token" } },
  { name: "identity provider down → 503, never a bot", auth: { failure: "identity_unavailable" }, header: "alice", active: ["alice"], expect: { allow: false, status: 503, reason: "identity_unavailable" } },

  // Turn tokens
  { name: "turn token of an active run → its sender", auth: { principal: turn("bob") }, runUser: "bob", expect: { allow: true, user: "bob" } },
  { name: "turn token + header naming its own sender", auth: { principal: turn("bob") }, header: "bob", runUser: "bob", expect: { allow: true, user: "bob" } },
  { name: "turn token + header naming someone else → 403", auth: { principal: turn("bob") }, header: "alice", runUser: "bob", expect: { allow: false, status: 403, reason: "effective_user_mismatch" } },
  { name: "turn token after its turn ended → 401", auth: { principal: turn("bob") }, expect: { allow: false, status: 401, reason: "turn_not_active" } },
  { name: "turn token of an earlier run with the same run ID (e.g. before a restart) → 401", auth: { principal: turn("bob") }, runUser: "bob", runTokenId: "j2", expect: { allow: false, status: 401, reason: "turn_token_superseded" } },
  { name: "turn token for another session → 403", auth: { principal: turn("bob", "p", "other") }, runUser: "bob", expect: { allow: false, status: 403, reason: "turn_wrong_session" } },
  { name: "turn token for another project → 403", auth: { principal: turn("bob", "q", "s") }, runUser: "bob", expect: { allow: false, status: 403, reason: "turn_wrong_session" } },
  { name: "turn token whose run now belongs to another user → 403", auth: { principal: turn("bob") }, runUser: "alice", expect: { allow: false, status: 403, reason: "turn_user_mismatch" } },
  { name: "owner's turn token → owner", auth: { principal: turn("alice") }, runUser: "alice", expect: { allow: true, user: "alice" } },

  // Service (runner bot) tokens
  { name: "service + header naming the active run's user", auth: { principal: service() }, header: "bob", active: ["bob"], expect: { allow: true, user: "bob" } },
  { name: "service without header → owner, allowed only if the owner's run is active", auth: { principal: service() }, active: ["alice"], expect: { allow: true, user: "alice" } },
  { name: "service without header while a collaborator's turn runs → 403 (no owner fallback)", auth: { principal: service() }, active: ["bob"], expect: { allow: false, status: 403, reason: "no_active_run_for_user" } },
  { name: "service + header, no active run → 403", auth: { principal: service() }, header: "bob", expect: { allow: false, status: 403, reason: "no_active_run_for_user" } },
  { name: "service + header naming a user who is not running → 403", auth: { principal: service() }, header: "alice", active: ["bob"], expect: { allow: false, status: 403, reason: "no_active_run_for_user" } },
  { name: "service bound to another session → 403", auth: { principal: service({ project: "p", session: "other" }) }, header: "bob", active: ["bob"], expect: { allow: false, status: 403, reason: "service_wrong_session" } },
  { name: "service bound to this session", auth: { principal: service({ project: "p", session: "s" }) }, header: "bob", active: ["bob"], expect: { allow: true, user: "bob" } },
  { name: "service, session missing → 404", auth: { principal: service() }, header: "bob", active: ["bob"], ownerId: null, expect: { allow: false, status: 404, reason: "session_not_found" } },

  // User principals
  { name: "owner without header → own credentials", auth: { principal: user("alice") }, expect: { allow: true, user: "alice" } },
  { name: "owner with header naming a collaborator → 403", auth: { principal: user("alice") }, header: "bob", active: ["bob"], expect: { allow: false, status: 403, reason: "not_sender" } },
  { name: "edit collaborator without header → 403 (effective user is the owner)", auth: { principal: user("bob") }, expect: { allow: false, status: 403, reason: "not_sender" } },
  { name: "edit collaborator naming themselves → own credentials", auth: { principal: user("bob") }, header: "bob", expect: { allow: true, user: "bob" } },
  { name: "view collaborator naming themselves → 403", auth: { principal: user("carol") }, header: "carol", expect: { allow: false, status: 403, reason: "cannot_send_turns" } },
  { name: "stranger naming themselves → 403", auth: { principal: user("dave") }, header: "dave", expect: { allow: false, status: 403, reason: "cannot_send_turns" } },
  { name: "stranger naming the owner → 403", auth: { principal: user("dave") }, header: "alice", active: ["alice"], expect: { allow: false, status: 403, reason: "not_sender" } },
  { name: "user, session missing → 404", auth: { principal: user("alice") }, ownerId: null, expect: { allow: false, status: 404, reason: "session_not_found" } },
];

describe("decideCredentialAccess (DESIGN §2.3)", () => {
  test.each(rows.map((r) => [r.name, r] as const))("%s", (_name, row) => {
    const principal = "principal" in row.auth ? row.auth.principal : undefined;
    const d = decideCredentialAccess({
      auth: row.auth,
      project: "p",
      session: "s",
      ownerId: row.ownerId === undefined ? "alice" : row.ownerId,
      ...(row.header !== undefined ? { runnerCurrentUser: row.header } : {}),
      ...(row.runUser !== undefined ? { turnRun: { userId: row.runUser, tokenId: row.runTokenId ?? "j1" } } : {}),
      activeRunUserIds: row.active ?? [],
      ...(principal?.kind === "user" ? { userRole: roles[principal.userId] } : {}),
    });
    if (row.expect.allow) {
      expect(d).toMatchObject({ allow: true, effectiveUserId: row.expect.user });
    } else {
      expect(d).toMatchObject({ allow: false, status: row.expect.status, reason: row.expect.reason });
    }
  });

  test("no input ever yields another user's credentials for a user principal", () => {
    for (const caller of Object.keys(roles))
      for (const header of [undefined, ...Object.keys(roles)])
        for (const ownerId of ["alice", "bob"]) {
          const d = decideCredentialAccess({
            auth: { principal: user(caller) },
            project: "p",
            session: "s",
            ownerId,
            ...(header !== undefined ? { runnerCurrentUser: header } : {}),
            activeRunUserIds: Object.keys(roles),
            userRole: roles[caller],
          });
          if (d.allow) expect(d.effectiveUserId).toBe(caller);
        }
  });
});
