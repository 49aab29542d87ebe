/**
 * The private per-turn directory (DESIGN §2.1 step 6): created 0700 under the turns root,
 * holding the token files and the turn's gitconfig (0600), removed in teardown (step 9).
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { TurnFile } from "../credentials/turn-environment.ts";

/**
 * Create a fresh turn directory `<root>/turn-XXXXXX` (mode 0700, unpredictable name).
 * `root` itself is created 0700 if missing and tightened to 0700 if it exists, since other
 * local users must not even list turn directories.
 * @throws the fs error (EACCES, ENOSPC…) when it cannot be created.
 */
export async function createTurnDir(root: string): Promise<string> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  // mkdtemp creates the directory 0700 with a random suffix.
  return mkdtemp(join(root, "turn-"));
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
