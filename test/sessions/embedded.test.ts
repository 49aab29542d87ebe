import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TurnkeyError, type ErrorCode } from "../../src/errors.ts";
import { EmbeddedSessionStore } from "../../src/sessions/embedded.ts";
import type { SessionRole } from "../../src/sessions/types.ts";
import { closeDatabase, openDatabase } from "../../src/store/sqlite.ts";

let dataDir: string;
let db: Database;
let store: EmbeddedSessionStore;
const NOW = new Date("2025-01-02T03:04:05.000Z");

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "turnkey-sessions-"));
  db = openDatabase(dataDir);
  store = new EmbeddedSessionStore(db, { now: () => NOW });
});
afterEach(() => {
  closeDatabase(db);
  rmSync(dataDir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<TurnkeyError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TurnkeyError);
    return e as TurnkeyError;
  }
  throw new Error("expected a TurnkeyError");
}

describe("EmbeddedSessionStore", () => {
  test("is writable", () => expect(store.readOnly).toBe(false));

  test("create, get, list", async () => {
    const s = await store.create("proj", "s1", { userId: "alice", userName: "Alice A." });
    expect(s).toEqual({ project: "proj", name: "s1", ownerId: "alice", ownerName: "Alice A.", collaborators: [], createdAt: NOW.toISOString() });
    expect(await store.get("proj", "s1")).toEqual(s);
    await store.create("proj", "a0", { userId: "bob" });
    await store.create("other", "s1", { userId: "carol" });
    const list = await store.list("proj");
    expect(list.map((x) => x.name)).toEqual(["a0", "s1"]);
    expect(list[0]).not.toHaveProperty("ownerName");
    expect(await store.list("empty")).toEqual([]);
    expect(await store.get("proj", "missing")).toBeNull();
  });

  test("create of an existing session → 409 session_exists, original kept", async () => {
    await store.create("proj", "s1", { userId: "alice" });
    const err = await failure(store.create("proj", "s1", { userId: "mallory" }));
    expect([err.status, err.code]).toEqual([409, "session_exists"]);
    expect((await store.get("proj", "s1"))!.ownerId).toBe("alice");
  });

  const badNames = [
    ["proj", "Bad_Name"],
    ["Proj", "s1"],
    ["proj", ""],
    ["proj", "x".repeat(64)],
  ] as const;
  for (const [project, session] of badNames)
    test(`create rejects invalid name ${project}/${session.slice(0, 10)}`, async () => {
      const err = await failure(store.create(project, session, { userId: "alice" }));
      expect([err.status, err.code]).toEqual([400, "invalid_name"]);
    });

  test("collaborators: add, change role, remove; list carries them", async () => {
    await store.create("proj", "s1", { userId: "alice" });
    await store.setCollaborator("proj", "s1", "carol", "view");
    let s = await store.setCollaborator("proj", "s1", "bob", "edit");
    expect(s.collaborators).toEqual([
      { userId: "bob", role: "edit" },
      { userId: "carol", role: "view" },
    ]);
    s = await store.setCollaborator("proj", "s1", "carol", "edit");
    expect(s.collaborators).toContainEqual({ userId: "carol", role: "edit" });
    s = await store.removeCollaborator("proj", "s1", "bob");
    expect(s.collaborators).toEqual([{ userId: "carol", role: "edit" }]);
    // removing a non-collaborator is a no-op
    expect((await store.removeCollaborator("proj", "s1", "nobody")).collaborators).toHaveLength(1);
    expect((await store.list("proj"))[0]!.collaborators).toEqual([{ userId: "carol", role: "edit" }]);
  });

  const errorCases: { name: string; run: () => Promise<unknown>; status: number; code: ErrorCode }[] = [
    { name: "setCollaborator on a missing session", run: () => store.setCollaborator("proj", "nope", "bob", "edit"), status: 404, code: "session_not_found" },
    { name: "removeCollaborator on a missing session", run: () => store.removeCollaborator("proj", "nope", "bob"), status: 404, code: "session_not_found" },
    { name: "owner as collaborator", run: () => store.setCollaborator("proj", "s1", "alice", "view"), status: 400, code: "bad_request" },
    { name: "empty collaborator ID", run: () => store.setCollaborator("proj", "s1", "", "view"), status: 400, code: "bad_request" },
    { name: "unknown role", run: () => store.setCollaborator("proj", "s1", "bob", "admin" as never), status: 400, code: "bad_request" },
  ];
  for (const c of errorCases)
    test(`${c.name} → ${c.status} ${c.code}`, async () => {
      await store.create("proj", "s1", { userId: "alice" });
      const err = await failure(c.run());
      expect([err.status, err.code]).toEqual([c.status, c.code]);
      expect((await store.get("proj", "s1"))!.collaborators).toEqual([]);
    });

  test("roleOf", async () => {
    await store.create("proj", "s1", { userId: "alice" });
    await store.create("proj", "s2", { userId: "bob" });
    await store.setCollaborator("proj", "s1", "bob", "edit");
    await store.setCollaborator("proj", "s1", "carol", "view");
    const rows: [string, string, string, SessionRole][] = [
      ["s1", "alice", "owner", "owner"],
      ["s1", "bob", "edit collaborator", "edit"],
      ["s1", "carol", "view collaborator", "view"],
      ["s1", "dave", "stranger", "none"],
      ["s1", "", "empty user ID", "none"],
      ["s2", "carol", "collaborator elsewhere", "none"],
      ["s2", "alice", "owner elsewhere", "none"],
      ["missing", "alice", "missing session", "none"],
    ];
    for (const [session, user, why, role] of rows) expect([why, await store.roleOf("proj", session, user)]).toEqual([why, role]);
    expect(await store.roleOf("other", "s1", "alice")).toBe("none");
  });

  test("deleting a session row cascades to its collaborators (foreign keys on)", async () => {
    await store.create("proj", "s1", { userId: "alice" });
    await store.setCollaborator("proj", "s1", "bob", "edit");
    db.run("DELETE FROM sessions WHERE project = 'proj' AND name = 's1'");
    expect(db.query("SELECT count(*) AS n FROM collaborators").get()).toEqual({ n: 0 });
  });

  test("data survives reopening the database", async () => {
    await store.create("proj", "s1", { userId: "alice" });
    await store.setCollaborator("proj", "s1", "bob", "view");
    closeDatabase(db);
    db = openDatabase(dataDir);
    expect(await new EmbeddedSessionStore(db).roleOf("proj", "s1", "bob")).toBe("view");
  });

  test("a closed database → 503 store_unavailable", async () => {
    closeDatabase(db);
    const err = await failure(store.get("proj", "s1"));
    expect([err.status, err.code]).toEqual([503, "store_unavailable"]);
    db = openDatabase(dataDir);
  });
});
