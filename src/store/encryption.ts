/**
 * Encryption of credential values at rest (DESIGN §4 "Embedded"): a JSON value becomes a compact
 * JWE (`alg: "dir"`, `enc: "A256GCM"`, jose) under a 256-bit master key.
 *
 * Each ciphertext is bound to its row: the user ID and provider go into the JWE protected header,
 * which AES-GCM authenticates as additional data, and decryption insists they equal the row being
 * read. A ciphertext copied into another user's (or provider's) row therefore fails to decrypt,
 * as does any edit to the header. The header also carries `kid`, a short fingerprint of the key
 * (not the key), so a wrong master key is reported as such.
 */
import { CompactEncrypt, compactDecrypt, base64url } from "jose";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ConfigError, unavailable, type TurnkeyError } from "../errors.ts";
import type { Config } from "../config.ts";
import { loadOrCreateSecretFile } from "./keys.ts";

/** Master key length: 32 bytes (A256GCM). */
export const MASTER_KEY_BYTES = 32;

/** File name of the master key in the data directory, used when `TURNKEY_MASTER_KEY` is unset. */
export const MASTER_KEY_FILE = "master.key";

/** The row a ciphertext belongs to. Both values are stored in the clear in the JWE header. */
export interface SecretBinding {
  userId: string;
  provider: string;
}

const ALG = "dir";
const ENC = "A256GCM";
const TYP = "turnkey-credential+jwe";

/**
 * Load the master key: `cfg.masterKey` (base64url, 32 bytes) when set, else
 * `<dataDir>/master.key`, created with mode 0600 on first start.
 * @throws ConfigError for a malformed `TURNKEY_MASTER_KEY` or a bad key file (see `keys.ts`).
 */
export function loadMasterKey(cfg: Pick<Config, "dataDir" | "masterKey">): Uint8Array {
  if (cfg.masterKey !== undefined) {
    let key: Uint8Array;
    try {
      key = base64url.decode(cfg.masterKey);
    } catch {
      throw new ConfigError("TURNKEY_MASTER_KEY", "expected 32 bytes as base64url");
    }
    if (key.length !== MASTER_KEY_BYTES) throw new ConfigError("TURNKEY_MASTER_KEY", "expected 32 bytes as base64url");
    return key;
  }
  return loadOrCreateSecretFile(join(cfg.dataDir, MASTER_KEY_FILE), MASTER_KEY_BYTES, `${MASTER_KEY_FILE} in dataDir`);
}

/**
 * Seals and opens JSON values with one 256-bit key. Holds the key in a private field; never logs
 * or returns it.
 * @example
 * const box = SecretBox.fromConfig(cfg);
 * const jwe = await box.encrypt({ token }, { userId: "alice", provider: "github" });
 * const value = await box.decrypt(jwe, { userId: "alice", provider: "github" });
 */
export class SecretBox {
  #key: Uint8Array;
  #kid: string;

  /** @throws ConfigError unless `key` is exactly 32 bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== MASTER_KEY_BYTES) throw new ConfigError("masterKey", `expected ${MASTER_KEY_BYTES} bytes, got ${key.length}`);
    this.#key = new Uint8Array(key);
    this.#kid = base64url.encode(createHash("sha256").update("turnkey-master-key-id\0").update(this.#key).digest().subarray(0, 8));
  }

  /** A box with the key from configuration or the key file (see `loadMasterKey`). */
  static fromConfig(cfg: Pick<Config, "dataDir" | "masterKey">): SecretBox {
    return new SecretBox(loadMasterKey(cfg));
  }

  /** Non-secret fingerprint of the key (the JWE `kid`): 8 bytes of a SHA-256, base64url. */
  get keyId(): string {
    return this.#kid;
  }

  /**
   * Encrypt `value` (anything `JSON.stringify` accepts) as a compact JWE bound to `binding`.
   * A fresh random 96-bit IV per call (jose).
   */
  async encrypt(value: unknown, binding: SecretBinding): Promise<string> {
    const plaintext = new TextEncoder().encode(JSON.stringify(value));
    return new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: ALG, enc: ENC, typ: TYP, kid: this.#kid, uid: binding.userId, prv: binding.provider })
      .encrypt(this.#key);
  }

  /**
   * Decrypt a JWE made by `encrypt` for the same `binding`.
   * @throws TurnkeyError 503 `store_unavailable` when the key is wrong, the ciphertext or header
   *   was altered, the JWE belongs to another row, or the plaintext is not JSON. The message says
   *   which, but never includes ciphertext, plaintext or key material, and no cause is attached
   *   (a JSON parse error would quote the plaintext).
   */
  async decrypt(jwe: string, binding: SecretBinding): Promise<unknown> {
    let plaintext: Uint8Array;
    let header: Record<string, unknown>;
    try {
      const res = await compactDecrypt(jwe, this.#key, {
        keyManagementAlgorithms: [ALG],
        contentEncryptionAlgorithms: [ENC],
      });
      plaintext = res.plaintext;
      header = res.protectedHeader as Record<string, unknown>;
    } catch {
      throw storeError(this.#kidOf(jwe) !== this.#kid
        ? "stored credential was encrypted with a different master key"
        : "stored credential failed to decrypt (corrupted or altered)");
    }
    if (header.uid !== binding.userId || header.prv !== binding.provider)
      throw storeError("stored credential belongs to a different row; refusing it");
    try {
      return JSON.parse(new TextDecoder().decode(plaintext));
    } catch {
      throw storeError("stored credential is not valid JSON after decryption");
    }
  }

  /** The `kid` of a JWE's (unverified) header, or undefined; used only to word an error. */
  #kidOf(jwe: string): unknown {
    try {
      const head = jwe.split(".", 1)[0] ?? "";
      return (JSON.parse(new TextDecoder().decode(base64url.decode(head))) as Record<string, unknown>).kid;
    } catch {
      return undefined;
    }
  }
}

function storeError(message: string): TurnkeyError {
  return unavailable(message, "store_unavailable");
}
