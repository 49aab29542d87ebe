/**
 * Secret key files in the data directory (DESIGN §4 "Embedded"): the master key for credentials
 * at rest, and any other fixed-length secret (the audit HMAC key) that must survive restarts.
 *
 * A key file holds exactly `bytes` raw random bytes, is a regular file, and has no group or world
 * permission bits (mode 0600 when we create it). The data directory is created with mode 0700.
 * Creation is race-free between processes: the key is written to a private temporary file and
 * published with `link(2)`, which fails if the name already exists (O_EXCL semantics), so two
 * processes starting at once end up reading the same key instead of overwriting each other's.
 * `readPrivateFile`/`readOrCreatePrivateFile` are that core for any private file (the signing-key
 * JWKs of `identity/keys.ts` use it too); `readSecretFile`/`loadOrCreateSecretFile` fix the length.
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
 * Read an existing private file (a key file) and check it. The generic core under
 * `readSecretFile` and the signing-key files of `identity/keys.ts`.
 * @param path the file.
 * @param setting the setting named in errors (default: the path).
 * @param expectBytes the exact length the file must have, in bytes; any length when omitted.
 * @returns the file's bytes, or `null` if the file does not exist.
 * @throws ConfigError when the file is not a regular file (symlinks are not followed), is
 *   group/world accessible (any of mode 0077 set), has the wrong length, or cannot be read.
 *   The message names the path and never contains the file's content.
 */
export function readPrivateFile(path: string, setting: string = path, expectBytes?: number): Uint8Array | null {
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
    if (expectBytes !== undefined && st.size !== expectBytes)
      throw new ConfigError(setting, `key file ${path} has ${st.size} bytes, expected exactly ${expectBytes}`);
    const bytes = st.size;
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
 * Return the private file at `path`, creating it with the content `make()` returns on first use.
 * The parent directory is created with mode 0700, the file with mode 0600: written to a private
 * temporary file (O_EXCL, O_NOFOLLOW), fsynced, and published with `link(2)`, which fails with
 * EEXIST rather than replace a concurrent winner's file. Safe against a concurrent first start in
 * another process: exactly one content wins and both processes return it (the file is re-read).
 * `make` is called only when the file does not exist; a string is written as UTF-8.
 * @param setting the setting named in errors (default: the path).
 * @param expectBytes the exact length the file must have, in bytes; any length when omitted.
 * @returns the file's bytes.
 * @throws ConfigError as `readPrivateFile`, or when the directory or file cannot be written.
 */
export function readOrCreatePrivateFile(
  path: string,
  make: () => Uint8Array | string,
  setting: string = path,
  expectBytes?: number,
): Uint8Array {
  const existing = readPrivateFile(path, setting, expectBytes);
  if (existing) return existing;
  ensureDataDir(dirname(path));
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const made = make();
  const content = typeof made === "string" ? Buffer.from(made, "utf8") : made;
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      let off = 0;
      while (off < content.length) off += writeSync(fd, content, off, content.length - off);
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
  // Re-read rather than trust our copy: if another process won the race, its content is the content.
  const stored = readPrivateFile(path, setting, expectBytes);
  if (!stored) throw new ConfigError(setting, `key file ${path} vanished right after creation`);
  return stored;
}

/**
 * Read an existing key file and check it (`readPrivateFile` with a fixed length).
 * @param path the key file.
 * @param bytes the exact length the key must have, in bytes.
 * @param setting the setting named in errors (default: the path).
 * @returns the key bytes, or `null` if the file does not exist.
 * @throws ConfigError when the file is not a regular file (symlinks are not followed), is
 *   group/world accessible (any of mode 0077 set), has the wrong length, or cannot be read.
 *   The message never contains key material.
 */
export function readSecretFile(path: string, bytes: number, setting: string = path): Uint8Array | null {
  return readPrivateFile(path, setting, bytes);
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
  return readOrCreatePrivateFile(path, () => new Uint8Array(randomBytes(bytes)), setting, bytes);
}
