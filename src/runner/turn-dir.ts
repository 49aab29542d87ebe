/**
 * The private per-turn directory (DESIGN §2.1 step 6): created 0700 under the turns root,
 * holding the token files and the turn's gitconfig (0600), removed in teardown (step 9).
 * With per-turn runner uids the root is 0711 (runners can traverse it to their own directory,
 * but not list it) and each turn directory is handed to its runner's uid before the spawn.
 */
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { TurnFile } from "../credentials/turn-environment.ts";

/** A runner's uid and gid (from the runner uid pool). */
export interface RunnerIdentity {
  uid: number;
  gid: number;
}

/**
 * Create a fresh turn directory `<root>/turn-XXXXXX` (mode 0700, owned by the gateway,
 * unpredictable name). `root` is created if missing and its mode set on every call: 0700, since
 * other local users must not even list turn directories; or, with `traversable` (runners under
 * their own uids must reach their directory), 0711. A traversable root often lives in a shared
 * temp dir, so it must be a real directory owned by the gateway (not a pre-planted one or a link).
 * @throws the fs error (EACCES, ENOSPC…) when it cannot be created; Error when a traversable
 *   root is not a directory owned by the gateway's uid.
 */
export async function createTurnDir(root: string, opts: { traversable?: boolean } = {}): Promise<string> {
  const mode = opts.traversable ? 0o711 : 0o700;
  await mkdir(root, { recursive: true, mode });
  if (opts.traversable) {
    const st = await lstat(root);
    if (!st.isDirectory() || st.uid !== process.getuid?.()) throw new Error(`turns dir ${root} is not a directory owned by the gateway`);
  }
  await chmod(root, mode);
  // mkdtemp creates the directory 0700 with a random suffix.
  return mkdtemp(join(root, "turn-"));
}

/**
 * Hand the turn directory and its top-level entries (the turn files, 0600) to the runner's
 * uid:gid, so a runner under its own uid can use them and no other runner uid can. Modes are
 * unchanged. Call before the spawn, while only the gateway can write the directory.
 * @throws the fs error (EPERM when the gateway may not chown: not root, no CAP_CHOWN).
 */
export async function giveTurnDir(dir: string, to: RunnerIdentity): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if ((await lstat(path)).isSymbolicLink()) continue; // the gateway writes none; never follow one
    await chown(path, to.uid, to.gid);
  }
  await chown(dir, to.uid, to.gid);
}

/**
 * Write `files` into `dir`, each with its mode, refusing to follow or overwrite an existing
 * entry (`wx`). @throws TypeError for a name that is not a bare file name; fs errors as is.
 */
export async function writeTurnFiles(dir: string, files: readonly TurnFile[]): Promise<void> {
  for (const f of files) {
    if (basename(f.name) !== f.name || f.name === "." || f.name === "..") throw new TypeError(`bad turn file name ${JSON.stringify(f.name)}`);
    await writeFile(join(dir, f.name), f.content, { mode: f.mode, flag: "wx" });
  }
}

/**
 * Remove a turn directory and everything the runner left in it. A runner may have made a
 * subdirectory unreadable (mode 0000); then permissions are restored and removal retried.
 * Never rejects for a missing dir. @throws the fs error if the second attempt fails too.
 */
export async function removeTurnDir(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    await makeOwnerWritable(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

async function makeOwnerWritable(dir: string): Promise<void> {
  try {
    if (!(await lstat(dir)).isDirectory()) return;
    await chmod(dir, 0o700);
    for (const e of await readdir(dir, { withFileTypes: true })) if (e.isDirectory()) await makeOwnerWritable(join(dir, e.name));
  } catch {
    // Best effort: the retry reports what is still wrong.
  }
}
