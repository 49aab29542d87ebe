/**
 * Credentials in the embedded database (DESIGN §4 "Embedded"): table `credentials` of
 * `store/sqlite.ts`, one row per (user ID, provider), the value encrypted by `SecretBox` and bound
 * to its row. Plaintext exists only in memory, between `get`/`put` and the caller.
 */
import type { Database, Statement } from "bun:sqlite";
import { badRequest } from "../errors.ts";
import type { SecretBox } from "../store/encryption.ts";
import { storeCall } from "../store/sqlite.ts";
import { isProvider, type ProviderName } from "./providers.ts";
import type { CredentialRecords, CredentialStore, CredentialSummary } from "./types.ts";

/** Options for `EmbeddedCredentialStore`. */
export interface EmbeddedCredentialStoreOptions {
  /** Clock for `updatedAt`; default `() => new Date()`. */
  now?: () => Date;
}

type Key = { user_id: string; provider: string };
type Row = Key & { ciphertext: string; updated_at: string };

const WHAT = "credential store";

/**
 * `CredentialStore` over bun:sqlite and a `SecretBox`; `readOnly` is false. Does not own the
 * database or the box.
 * Errors: 400 `unknown_provider` for a provider outside `PROVIDERS`, 400 `bad_request` for an
 * empty user ID on `put`; 503 `store_unavailable` when SQLite fails or a stored value cannot be
 * decrypted (wrong master key, altered row, ciphertext moved between rows). A missing credential
 * is `null`, never an error.
 */
export class EmbeddedCredentialStore implements CredentialStore {
  readonly readOnly = false;
  #box: SecretBox;
  #now: () => Date;
  #q: {
    get: Statement<{ ciphertext: string }, [Key]>;
    upsert: Statement<unknown, [Row]>;
    delete: Statement<unknown, [Key]>;
    list: Statement<{ provider: string; updated_at: string }, [{ user_id: string }]>;
  };

  /**
   * @param db a database opened by `openDatabase` (schema in place, strict binding on).
   * @param box the box holding the master key.
   */
  constructor(db: Database, box: SecretBox, options: EmbeddedCredentialStoreOptions = {}) {
    this.#box = box;
    this.#now = options.now ?? (() => new Date());
    this.#q = {
      get: db.query("SELECT ciphertext FROM credentials WHERE user_id = $user_id AND provider = $provider"),
      upsert: db.query(
        `INSERT INTO credentials (user_id, provider, ciphertext, updated_at) VALUES ($user_id, $provider, $ciphertext, $updated_at)
         ON CONFLICT (user_id, provider) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`,
      ),
      delete: db.query("DELETE FROM credentials WHERE user_id = $user_id AND provider = $provider"),
      list: db.query("SELECT provider, updated_at FROM credentials WHERE user_id = $user_id ORDER BY provider"),
    };
  }

  /**
   * The decrypted record, or `null` when the user has none for `provider` (or the user ID is
   * empty). The record is returned as stored; it was validated when it was put.
   */
  async get<P extends ProviderName>(userId: string, provider: P): Promise<CredentialRecords[P] | null> {
    checkProvider(provider);
    if (!userId) return null;
    const row = storeCall(WHAT, () => this.#q.get.get({ user_id: userId, provider }));
    if (!row) return null;
    return (await this.#box.decrypt(row.ciphertext, { userId, provider })) as CredentialRecords[P];
  }

  /**
   * Encrypt and store `value`, replacing any previous one; `updatedAt` becomes now. Callers
   * validate `value` first (`parseCredential` for bodies from users).
   */
  async put<P extends ProviderName>(userId: string, provider: P, value: CredentialRecords[P]): Promise<void> {
    checkProvider(provider);
    if (!userId) throw badRequest("user ID must not be empty");
    const ciphertext = await this.#box.encrypt(value, { userId, provider });
    storeCall(WHAT, () =>
      this.#q.upsert.run({ user_id: userId, provider, ciphertext, updated_at: this.#now().toISOString() }),
    );
  }

  /** Delete the user's credential for `provider`; `true` iff one existed. */
  async delete(userId: string, provider: ProviderName): Promise<boolean> {
    checkProvider(provider);
    return storeCall(WHAT, () => this.#q.delete.run({ user_id: userId, provider }).changes > 0);
  }

  /** Which providers the user has credentials for, sorted by provider, with `updatedAt`. Never values. */
  async list(userId: string): Promise<CredentialSummary[]> {
    return storeCall(WHAT, () =>
      this.#q.list
        .all({ user_id: userId })
        .filter((r): r is { provider: ProviderName; updated_at: string } => isProvider(r.provider))
        .map((r) => ({ provider: r.provider, updatedAt: r.updated_at })),
    );
  }
}

function checkProvider(provider: string): void {
  if (!isProvider(provider)) throw badRequest("unknown credential provider", "unknown_provider");
}
