/**
 * The embedded database (DESIGN §4 "Embedded"): `<dataDir>/turnkey.db`, opened with bun:sqlite in
 * WAL mode. The schema is versioned with `PRAGMA user_version`: `MIGRATIONS[i]` takes the
 * database from version `i` to `i + 1`, each in its own transaction. Append, never edit.
 */
import { Database } from "bun:sqlite";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, TurnkeyError } from "../errors.ts";
import { ensureDataDir } from "./keys.ts";

/** File name of the database in the data directory. */
export const DATABASE_FILE = "turnkey.db";

/** How long a statement waits for a lock held by another connection, in milliseconds. */
export const BUSY_TIMEOUT_MS = 5000;

/** Schema migrations; index `i` upgrades `user_version` `i` → `i + 1`. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE sessions (
    project    TEXT NOT NULL,
    name       TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    owner_name TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (project, name)
  ) STRICT;
  CREATE TABLE collaborators (
    project  TEXT NOT NULL,
    session  TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    role     TEXT NOT NULL CHECK (role IN ('edit', 'view')),
    PRIMARY KEY (project, session, user_id),
    FOREIGN KEY (project, session) REFERENCES sessions (project, name) ON DELETE CASCADE
  ) STRICT;
  CREATE TABLE credentials (
    user_id    TEXT NOT NULL,
    provider   TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, provider)
  ) STRICT;
  `,
];

/** The schema version this build writes (`PRAGMA user_version`). */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Open (creating if needed) `<dataDir>/turnkey.db` and bring its schema up to `SCHEMA_VERSION`.
 * The data directory is created with mode 0700 and the database file with mode 0600 (SQLite gives
 * its `-wal` and `-shm` files the same mode). Pragmas: `journal_mode=WAL`,
 * `busy_timeout=BUSY_TIMEOUT_MS`, `foreign_keys=ON`, `synchronous=NORMAL`, `secure_delete=ON`
 * (deleted credential ciphertexts are zeroed, not left in free pages).
 * Statements use strict binding: parameters are named without a prefix (`{ project }` binds
 * `$project`).
 * @throws ConfigError (setting `dataDir`) when the file cannot be opened, or was written by a newer
 *   build (`user_version` > `SCHEMA_VERSION`).
 */
export function openDatabase(dataDir: string): Database {
  ensureDataDir(dataDir);
  const path = join(dataDir, DATABASE_FILE);
  let db: Database;
  try {
    closeSync(openSync(path, "a", 0o600)); // create with 0600 before SQLite does (0644)
    db = new Database(path, { create: true, readwrite: true, strict: true });
  } catch (err) {
    throw new ConfigError("dataDir", `cannot open database ${path}: ${(err as Error).message}`);
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA secure_delete = ON");
    migrate(db, path);
  } catch (err) {
    db.close();
    if (err instanceof ConfigError) throw err;
    throw new ConfigError("dataDir", `cannot prepare database ${path}: ${(err as Error).message}`);
  }
  return db;
}

function migrate(db: Database, path: string): void {
  // BEGIN IMMEDIATE takes the write lock first, so two processes starting at once migrate once.
  const step = db.transaction((from: number) => {
    const current = userVersion(db);
    if (current !== from) return; // another process did it
    db.exec(MIGRATIONS[from]!);
    db.exec(`PRAGMA user_version = ${from + 1}`);
  });
  for (;;) {
    const version = userVersion(db);
    if (version > SCHEMA_VERSION)
      throw new ConfigError("dataDir", `database ${path} has schema version ${version}, newer than this build supports (${SCHEMA_VERSION})`);
    if (version === SCHEMA_VERSION) return;
    step.immediate(version);
  }
}

function userVersion(db: Database): number {
  return (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
}

/** Close the database; safe to call twice. Pending statements are finalized. */
export function closeDatabase(db: Database): void {
  db.close(false);
}

/**
 * Run a synchronous store operation, turning SQLite failures (locked past the busy timeout, disk
 * full, I/O error, closed database) into TurnkeyError 503 `store_unavailable` so callers fail
 * closed (DESIGN §7 rule 4). `TurnkeyError`s pass through unchanged. The SQLite error is kept as
 * `cause` for the log; it names tables and columns, never bound values.
 * @param what names the store in the message, e.g. "session store".
 */
export function storeCall<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TurnkeyError) throw err;
    throw new TurnkeyError(503, "store_unavailable", `${what} unavailable`, { cause: err });
  }
}
