import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { SCHEMA_VERSION, closeDatabase, openDatabase } from "../../src/store/sqlite.ts";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "turnkey-sqlite-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("openDatabase", () => {
  test("creates dir 0700 and db 0600, migrates to SCHEMA_VERSION, sets pragmas", () => {
    const dataDir = join(root, "data");
    const db = openDatabase(dataDir);
    try {
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dataDir, "turnkey.db")).mode & 0o777).toBe(0o600);
      expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: SCHEMA_VERSION });
      expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
      expect(db.query("PRAGMA foreign_keys").get()).toEqual({ foreign_keys: 1 });
      expect((db.query("PRAGMA busy_timeout").get() as { timeout: number }).timeout).toBeGreaterThan(0);
      const tables = db.query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all();
      expect(tables).toEqual([{ name: "collaborators" }, { name: "credentials" }, { name: "sessions" }]);
      // the role CHECK constraint holds
      db.run("INSERT INTO sessions VALUES ('p', 's', 'alice', NULL, 'now')");
      expect(() => db.run("INSERT INTO collaborators VALUES ('p', 's', 'bob', 'admin')")).toThrow();
      // and the foreign key
      expect(() => db.run("INSERT INTO collaborators VALUES ('p', 'nope', 'bob', 'edit')")).toThrow();
    } finally {
      closeDatabase(db);
    }
  });

  test("reopening is idempotent and keeps data", () => {
    const db = openDatabase(root);
    db.run("INSERT INTO sessions VALUES ('p', 's', 'alice', NULL, 'now')");
    closeDatabase(db);
    closeDatabase(db); // twice is fine
    const again = openDatabase(root);
    expect(again.query("SELECT count(*) AS n FROM sessions").get()).toEqual({ n: 1 });
    closeDatabase(again);
  });

  test("a database from a newer build is refused", () => {
    const raw = new Database(join(root, "turnkey.db"), { create: true });
    raw.run(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => openDatabase(root)).toThrow(ConfigError);
    expect(() => openDatabase(root)).toThrow(/newer than this build/);
  });
});
