/**
 * Everything a pooled runner uid may leave behind (DESIGN §7 rules 1 and 2): its processes,
 * wherever they are (a runner that calls `setsid` leaves its process group but not its uid),
 * and its files in the world-writable temp directories. Both must be gone before the uid goes
 * to another turn, or the next turn, maybe another user's, could read or signal them.
 *
 * Linux only: processes are found through `/proc/<pid>/status`.
 */
import { spawnSync } from "node:child_process";
import { lstat, readdir, rm } from "node:fs/promises";
import { scanProcesses } from "./process-group.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Refuse uids whose processes must never be swept: root and the gateway itself. */
function assertSweepable(uid: number): void {
  if (!Number.isInteger(uid) || uid <= 0 || uid === process.getuid?.()) throw new RangeError(`refusing to sweep uid ${uid}`);
}

/**
 * PIDs of the live (non-zombie) processes with `uid` as their real, effective, saved or
 * filesystem uid, from `/proc/<pid>/status` (the `/proc/<pid>` owner is not enough: a process
 * that clears its dumpable flag shows up as root-owned). Returns null where `/proc` cannot be read.
 */
export function uidProcesses(uid: number): number[] | null {
  return scanProcesses("status", (status) => {
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    if (state === "Z" || state === "X") return false;
    const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/).map(Number) ?? [];
    return uids.includes(uid);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * SIGKILL every process of `uid`, atomically: a helper running *as* `uid` calls `kill(-1, SIGKILL)`,
 * which the kernel delivers to every process that uid may signal in one pass under its task-list
 * lock, so a process that keeps re-forking cannot slip between a `/proc` scan and a `kill(pid)`
 * (a security review escaped the old scan-and-kill loop that way and kept its uid for the next
 * user's turn). POSIX `kill(2)`: pid -1 excludes only the caller and init. Repeated, then the
 * uid is confirmed idle by a `/proc` scan. The caller must own the uid exclusively.
 * @param timeoutMs give up after this long, ms (default 2000).
 * @returns true once no live process has the uid; false if some still did at the timeout, the
 *   helper could not run, or `/proc` is unreadable (then the uid must not be reused).
 * @throws RangeError for uid 0 or the gateway's own uid.
 */
export async function killUidProcesses(uid: number, timeoutMs = 2000): Promise<boolean> {
  assertSweepable(uid);
  const until = Date.now() + timeoutMs;
  for (;;) {
    const pids = uidProcesses(uid);
    if (pids === null) return false;
    if (pids.length === 0) {
      // A forker may have been between fork and exec during the scan: one more sweep and scan.
      if (!killAllAs(uid)) return false;
      const again = uidProcesses(uid);
      if (again !== null && again.length === 0) return true;
    } else if (!killAllAs(uid)) return false;
    if (Date.now() >= until) return false;
    await sleep(10);
  }
}

/** Run `kill -9 -1` as `uid` (gid = uid, no groups, empty environment). @returns whether it ran. */
function killAllAs(uid: number): boolean {
  const r = spawnSync("/bin/sh", ["-c", "kill -9 -1 2>/dev/null; exit 0"], { uid, gid: uid, env: {}, stdio: "ignore", timeout: 5000 });
  return r.error === undefined && r.status === 0;
}

/** World-writable directories a runner can leave files in: the temp dir, `/var/tmp`, `/dev/shm`, the lock dirs. */
export function sharedTempDirs(): string[] {
  return [...new Set([tmpdir(), "/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock"])];
}

/**
 * Remove the top-level entries of `dirs` owned by `uid` (files, symlinks, whole trees; links
 * are removed, never followed). Call only after `killUidProcesses` confirmed the uid idle, so
 * nothing recreates them. Entries deeper down, in someone else's directory, are not found.
 * @returns how many entries were removed; failures are skipped (best effort, never rejects).
 * @throws RangeError for uid 0 or the gateway's own uid.
 */
export async function removeUidLeftovers(uid: number, dirs: readonly string[] = sharedTempDirs()): Promise<number> {
  assertSweepable(uid);
  let removed = 0;
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(dir, name);
      try {
        if ((await lstat(path)).uid !== uid) continue;
        await rm(path, { recursive: true, force: true });
        removed++;
      } catch {
        // vanished or not removable: best effort
      }
    }
  }
  return removed;
}
