/**
 * Signing keys kept in the data directory (DESIGN §4): ES256 (P-256) private JWKs, one file per
 * purpose, mode 0600, created on first start and reused afterwards so tokens survive a restart.
 *
 * Creation is atomic and never clobbers: the key is written to a temporary file and hard-linked
 * into place, so two processes starting at once agree on one key (the loser reads the winner's).
 * An existing file is refused when it is a symlink, not a regular file, or group/world-accessible,
 * the same rules `store/keys.ts` applies to raw key files.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import { closeSync, constants, existsSync, fstatSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { ConfigError } from "../errors.ts";
import { ensureDataDir } from "../store/keys.ts";

/** File name of the development user issuer's key. */
export const DEV_ISSUER_KEY_FILE = "dev-issuer.jwk";
/** File name of the turn-token signing key. */
export const TURN_SIGNING_KEY_FILE = "turn-signing.jwk";

/** A loaded signing key: the private key for signing and the public JWK for verifiers. */
export interface SigningKey {
  /** Always `ES256`. */
  alg: "ES256";
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key; goes in the JWS `kid`. */
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** Public JWK with `kid`, `alg` and `use: "sig"`; safe to publish. */
  publicJwk: JWK;
}

/**
 * Read the text file at `path`, or create it with `make()` (mode 0600) when it does not exist,
 * atomically: written to a private temporary file, fsynced, and published with `link(2)`, which
 * fails with EEXIST rather than replace a concurrent winner's file (the loser then reads that).
 * The parent directory is created with mode 0700. Same rules as `store/keys.ts` for raw keys.
 * @returns the file's content.
 * @throws ConfigError (naming the path) when the file is a symlink, not a regular file, group- or
 *   world-accessible, or cannot be read or created. Messages never contain the content.
 */
export function readOrCreateFile(path: string, make: () => string): string {
  const existing = readPrivateFile(path);
  if (existing !== null) return existing;
  ensureDataDir(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, make());
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  } catch (err) {
    throw new ConfigError(path, `cannot create key file: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  } finally {
    rmSync(tmp, { force: true });
  }
  const stored = readPrivateFile(path);
  if (stored === null) throw new ConfigError(path, "key file vanished right after creation");
  return stored;
}

/** The content of a private (0600-ish, regular, not symlinked) file, or `null` if absent. */
function readPrivateFile(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    throw new ConfigError(path, code === "ELOOP" ? "key file is a symbolic link; refusing it" : `cannot open key file: ${code ?? "error"}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(path, "key file is not a regular file");
    if ((st.mode & 0o077) !== 0)
      throw new ConfigError(path, `key file is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`);
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}

/**
 * Load the ES256 key in `<dataDir>/<fileName>`, generating it on first use.
 * @throws ConfigError naming the file when it exists but is not an ES256 private JWK.
 * @example
 * const key = await loadOrCreateSigningKey(cfg.dataDir, TURN_SIGNING_KEY_FILE);
 */
export async function loadOrCreateSigningKey(dataDir: string, fileName: string): Promise<SigningKey> {
  const path = join(dataDir, fileName);
  let fresh: string | undefined;
  if (!existsSync(path)) fresh = await newPrivateJwkText();
  const text = readOrCreateFile(path, () => fresh ?? "");
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch {
    throw new ConfigError(path, "not a JSON Web Key");
  }
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.d !== "string" || typeof jwk.x !== "string" || typeof jwk.y !== "string")
    throw new ConfigError(path, "expected an EC P-256 private JWK (ES256)");
  const publicJwk: JWK = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
  const kid = await calculateJwkThumbprint(publicJwk, "sha256");
  publicJwk.kid = kid;
  publicJwk.alg = "ES256";
  publicJwk.use = "sig";
  try {
    const privateKey = (await importJWK({ ...jwk, alg: "ES256" }, "ES256")) as CryptoKey;
    const publicKey = (await importJWK(publicJwk, "ES256")) as CryptoKey;
    return { alg: "ES256", kid, privateKey, publicKey, publicJwk };
  } catch (cause) {
    throw new ConfigError(path, `unusable key: ${(cause as Error).message}`);
  }
}

async function newPrivateJwkText(): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint({ kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y } as JWK, "sha256");
  jwk.alg = "ES256";
  jwk.use = "sig";
  return JSON.stringify(jwk) + "\n";
}
