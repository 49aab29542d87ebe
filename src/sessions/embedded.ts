/**
 * Sessions in the embedded database (DESIGN §4 "Embedded"): tables `sessions` and
 * `collaborators` of `store/sqlite.ts`. Roles are derived from the owner and the collaborator
 * rows (DESIGN §1). Every statement is prepared once; multi-step writes run in one transaction.
 */
import type { Database, Statement } from "bun:sqlite";
import { badRequest, conflict, notFound } from "../errors.ts";
import { isDns1123Label } from "../names.ts";
import { storeCall } from "../store/sqlite.ts";
import type { Collaborator, CollaboratorRole, Session, SessionRole, SessionStore } from "./types.ts";

// A type alias, not an interface: bun:sqlite bindings need an implicit index signature.
type SessionRow = {
  project: string;
  name: string;
  owner_id: string;
  owner_name: string | null;
  created_at: string;
};
interface CollaboratorRow {
  session: string;
  user_id: string;
  role: CollaboratorRole;
}

/** Options for `EmbeddedSessionStore`. */
export interface EmbeddedSessionStoreOptions {
  /** Clock for `createdAt`; default `() => new Date()`. */
  now?: () => Date;
}

const WHAT = "session store";

/**
 * `SessionStore` over bun:sqlite; `readOnly` is false. Does not own the database: closing it is
 * the caller's job (see `openEmbeddedStores`).
 * Errors: 409 `session_exists`, 404 `session_not_found`, 400 `bad_request` (owner as
 * collaborator), 400 `invalid_name` (a name that is not a DNS-1123 label, or an empty user ID,
 * reaching `create`), 503 `store_unavailable` for SQLite failures.
 */
export class EmbeddedSessionStore implements SessionStore {
  readonly readOnly = false;
  #db: Database;
  #now: () => Date;
  #q: {
    get: Statement<SessionRow, [{ project: string; name: string }]>;
    insert: Statement<unknown, [SessionRow]>;
    list: Statement<SessionRow, [{ project: string }]>;
    collabsOf: Statement<CollaboratorRow, [{ project: string; session: string }]>;
    collabsOfProject: Statement<CollaboratorRow, [{ project: string }]>;
    upsertCollab: Statement<unknown, [{ project: string; session: string; user_id: string; role: CollaboratorRole }]>;
    deleteCollab: Statement<unknown, [{ project: string; session: string; user_id: string }]>;
    role: Statement<{ owner_id: string; role: CollaboratorRole | null }, [{ project: string; name: string; user_id: string }]>;
  };

  /** @param db a database opened by `openDatabase` (schema in place, strict binding on). */
  constructor(db: Database, options: EmbeddedSessionStoreOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? (() => new Date());
    this.#q = {
      get: db.query("SELECT project, name, owner_id, owner_name, created_at FROM sessions WHERE project = $project AND name = $name"),
      insert: db.query(
        `INSERT INTO sessions (project, name, owner_id, owner_name, created_at)
         VALUES ($project, $name, $owner_id, $owner_name, $created_at) ON CONFLICT DO NOTHING`,
      ),
      list: db.query("SELECT project, name, owner_id, owner_name, created_at FROM sessions WHERE project = $project ORDER BY name"),
      collabsOf: db.query(
        "SELECT session, user_id, role FROM collaborators WHERE project = $project AND session = $session ORDER BY user_id",
      ),
      collabsOfProject: db.query("SELECT session, user_id, role FROM collaborators WHERE project = $project ORDER BY user_id"),
      upsertCollab: db.query(
        `INSERT INTO collaborators (project, session, user_id, role) VALUES ($project, $session, $user_id, $role)
         ON CONFLICT (project, session, user_id) DO UPDATE SET role = excluded.role`,
      ),
      deleteCollab: db.query("DELETE FROM collaborators WHERE project = $project AND session = $session AND user_id = $user_id"),
      role: db.query(
        `SELECT s.owner_id AS owner_id, c.role AS role FROM sessions s
         LEFT JOIN collaborators c ON c.project = s.project AND c.session = s.name AND c.user_id = $user_id
         WHERE s.project = $project AND s.name = $name`,
      ),
    };
  }

  /** The session with its collaborators (sorted by user ID), or `null`. */
  async get(project: string, session: string): Promise<Session | null> {
    return storeCall(WHAT, () => this.#read(project, session));
  }

  /**
   * Create a session owned by `owner`, with no collaborators.
   * @throws 409 `session_exists` if `project/session` exists; 400 `invalid_name` for a bad name.
   */
  async create(project: string, session: string, owner: { userId: string; userName?: string }): Promise<Session> {
    if (!isDns1123Label(project)) throw badRequest("project name must be a DNS-1123 label", "invalid_name");
    if (!isDns1123Label(session)) throw badRequest("session name must be a DNS-1123 label", "invalid_name");
    if (!owner.userId) throw badRequest("owner user ID must not be empty", "invalid_name");
    return storeCall(WHAT, () => {
      const row: SessionRow = {
        project,
        name: session,
        owner_id: owner.userId,
        owner_name: owner.userName ?? null,
        created_at: this.#now().toISOString(),
      };
      if (this.#q.insert.run(row).changes === 0) throw conflict(`session ${project}/${session} already exists`, "session_exists");
      return toSession(row, []);
    });
  }

  /** Sessions of a project, sorted by name, each with its collaborators. */
  async list(project: string): Promise<Session[]> {
    return storeCall(WHAT, () =>
      this.#db.transaction(() => {
        const bySession = new Map<string, Collaborator[]>();
        for (const c of this.#q.collabsOfProject.all({ project })) {
          const list = bySession.get(c.session) ?? [];
          list.push({ userId: c.user_id, role: c.role });
          bySession.set(c.session, list);
        }
        return this.#q.list.all({ project }).map((row) => toSession(row, bySession.get(row.name) ?? []));
      })(),
    );
  }

  /**
   * Add `userId` as a collaborator with `role`, or change their role.
   * @throws 404 `session_not_found`; 400 `bad_request` when `userId` is the owner (the owner's role
   *   is fixed) or empty.
   */
  async setCollaborator(project: string, session: string, userId: string, role: CollaboratorRole): Promise<Session> {
    if (!userId) throw badRequest("collaborator user ID must not be empty");
    if (role !== "edit" && role !== "view") throw badRequest("collaborator role must be edit or view");
    return storeCall(WHAT, () =>
      this.#db.transaction(() => {
        const row = this.#q.get.get({ project, name: session });
        if (!row) throw notFound(`session ${project}/${session} not found`, "session_not_found");
        if (row.owner_id === userId) throw badRequest("the session owner cannot be added as a collaborator");
        this.#q.upsertCollab.run({ project, session, user_id: userId, role });
        return this.#read(project, session)!;
      }).immediate(),
    );
  }

  /**
   * Remove `userId` from the collaborators; a user who is not one is a no-op.
   * @throws 404 `session_not_found`.
   */
  async removeCollaborator(project: string, session: string, userId: string): Promise<Session> {
    return storeCall(WHAT, () =>
      this.#db.transaction(() => {
        if (!this.#q.get.get({ project, name: session }))
          throw notFound(`session ${project}/${session} not found`, "session_not_found");
        this.#q.deleteCollab.run({ project, session, user_id: userId });
        return this.#read(project, session)!;
      }).immediate(),
    );
  }

  /** `owner`, `edit`, `view`, or `none` (strangers, empty user IDs and missing sessions). */
  async roleOf(project: string, session: string, userId: string): Promise<SessionRole> {
    if (!userId) return "none";
    return storeCall(WHAT, () => {
      const row = this.#q.role.get({ project, name: session, user_id: userId });
      if (!row) return "none";
      if (row.owner_id === userId) return "owner";
      return row.role ?? "none";
    });
  }

  #read(project: string, session: string): Session | null {
    const row = this.#q.get.get({ project, name: session });
    if (!row) return null;
    const collaborators = this.#q.collabsOf.all({ project, session }).map((c) => ({ userId: c.user_id, role: c.role }));
    return toSession(row, collaborators);
  }
}

function toSession(row: SessionRow, collaborators: Collaborator[]): Session {
  const s: Session = { project: row.project, name: row.name, ownerId: row.owner_id, collaborators, createdAt: row.created_at };
  if (row.owner_name !== null) s.ownerName = row.owner_name;
  return s;
}
