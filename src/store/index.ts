/**
 * The embedded backend in one call (DESIGN §4 "Embedded"): master key, database, and both stores
 * over them.
 */
import type { Config } from "../config.ts";
import { EmbeddedCredentialStore } from "../credentials/embedded.ts";
import { EmbeddedSessionStore } from "../sessions/embedded.ts";
import { SecretBox } from "./encryption.ts";
import { closeDatabase, openDatabase } from "./sqlite.ts";

export { SecretBox, loadMasterKey, MASTER_KEY_BYTES, MASTER_KEY_FILE, type SecretBinding } from "./encryption.ts";
export { ensureDataDir, loadOrCreateSecretFile, readSecretFile } from "./keys.ts";
export { openDatabase, closeDatabase, storeCall, DATABASE_FILE, SCHEMA_VERSION } from "./sqlite.ts";

/** What `openEmbeddedStores` returns. `close` is idempotent; the stores fail with 503 after it. */
export interface EmbeddedStores {
  sessions: EmbeddedSessionStore;
  credentials: EmbeddedCredentialStore;
  close(): void;
}

/**
 * Open the embedded backend in `cfg.dataDir` (created with mode 0700): the master key from
 * `cfg.masterKey` or `<dataDir>/master.key` (created 0600 on first start), and
 * `<dataDir>/turnkey.db` migrated to the current schema. The key is loaded first, so a bad key
 * fails before the database is touched.
 * @throws ConfigError for a bad key, key file, data directory or database (see `keys.ts`,
 *   `sqlite.ts`).
 * @example
 * const stores = openEmbeddedStores(cfg);
 * try { await stores.credentials.get("alice", "github"); } finally { stores.close(); }
 */
export function openEmbeddedStores(cfg: Pick<Config, "dataDir" | "masterKey">): EmbeddedStores {
  const box = SecretBox.fromConfig(cfg);
  const db = openDatabase(cfg.dataDir);
  return {
    sessions: new EmbeddedSessionStore(db),
    credentials: new EmbeddedCredentialStore(db, box),
    close: () => closeDatabase(db),
  };
}
