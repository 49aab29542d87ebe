/**
 * Secret key files in the data directory (DESIGN §4 "Embedded"): the master key for credentials
 * at rest, and any other fixed-length secret (the audit HMAC key) that must survive restarts.
 *
 * A key file holds exactly `bytes` raw random bytes, is a regular file, and has no group or world
 * permission bits (mode 0600 when we create it). The data directory is created with mode 0700.
 * Creation is race-free between processes: the key is written to a private temporary file and
 * published with `link(2)`, which fails if the name already exists (O_EXCL semantics), so two
 * processes starting at once end up reading the same key instead of overwriting each other's.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join, basename } from "node:path";
import { ConfigError } from "../errors.ts";

/**
 * Create `dir` (and parents) with mode 0700 if it does not exist. An existing directory is left
 * as it is: its permissions are the operator's choice.
 * @throws ConfigError (setting `dataDir`) when it cannot be created or is not a directory.
 */
export function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError("dataDir", `cannot create data directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/**
 * Read an existing key file and check it.
 * @param path the key file.
 * @param bytes the exact length the key must have, in bytes.
 * @param setting the setting named in errors (default: the path).
 * @returns the key bytes, or `null` if the file does not exist.
 * @throws ConfigError when the file is not a regular file (symlinks are not followed), is
 *   group/world accessible (any of mode 0077 set), has the wrong length, or cannot be read.
 *   The message never contains key material.
 */
export function readSecretFile(path: string, bytes: number, setting: string = path): Uint8Array | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP") throw new ConfigError(setting, `key file ${path} is a symbolic link; refusing it`);
    throw new ConfigError(setting, `cannot open key file ${path}: ${code ?? "error"}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(setting, `key file ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0)
      throw new ConfigError(
        setting,
        `key file ${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`,
      );
    if (st.size !== bytes)
      throw new ConfigError(setting, `key file ${path} has ${st.size} bytes, expected exactly ${bytes}`);
    const buf = new Uint8Array(bytes);
    let off = 0;
    while (off < bytes) {
      const n = readSync(fd, buf, off, bytes - off, off);
      if (n === 0) break;
      off += n;
    }
    if (off !== bytes) throw new ConfigError(setting, `key file ${path} changed while being read`);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/**
 * Return the key stored at `path`, creating it with `bytes` fresh random bytes (CSPRNG) on first
 * use. The parent directory is created with mode 0700, the file with mode 0600. Safe against a
 * concurrent first start in another process: exactly one key wins and both processes return it.
 * @param bytes key length in bytes (32 for the master key).
 * @param setting the setting named in errors (default: the path).
 * @throws ConfigError as `readSecretFile`, or when the directory or file cannot be written.
 * @example
 * const masterKey = loadOrCreateSecretFile(join(cfg.dataDir, "master.key"), 32);
 */
export function loadOrCreateSecretFile(path: string, bytes: number, setting: string = path): Uint8Array {
  const existing = readSecretFile(path, bytes, setting);
  if (existing) return existing;
  ensureDataDir(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const key = new Uint8Array(randomBytes(bytes));
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      let off = 0;
      while (off < bytes) off += writeSync(fd, key, off, bytes - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path); // atomic publish; EEXIST if another process got there first
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(setting, `cannot create key file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
  // Re-read rather than trust our copy: if another process won the race, its key is the key.
  const stored = readSecretFile(path, bytes, setting);
  if (!stored) throw new ConfigError(setting, `key file ${path} vanished right after creation`);
  return stored;
}
