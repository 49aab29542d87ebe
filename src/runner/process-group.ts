/**
 * Runner processes in their own process group (DESIGN §2.1 steps 6 and 9). The runner is
 * spawned `detached`, which makes it the leader of a new session and process group whose ID is
 * its PID; everything it starts (shells, tools, a background `sleep`) inherits the group unless
 * it calls `setsid`/`setpgid` itself. Teardown signals the whole group, so nothing a turn
 * started outlives it. A process that deliberately leaves the group escapes this: containing
 * that needs a cgroup or a PID namespace, which is the deployment's job.
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Options of `spawnProcessGroup`. */
export interface SpawnGroupOptions {
  /** The child's complete environment (nothing is inherited). */
  env: Record<string, string>;
  cwd: string;
  /** Default: stdin, stdout and stderr piped. */
  stdio?: StdioOptions;
  /**
   * Run as this uid and gid (a runner uid from the pool); unset = the gateway's own. Bun's
   * `node:child_process` switches in the child before exec and drops supplementary groups
   * (test/runner/runner-uids.test.ts checks both). Needs root or CAP_SETUID/CAP_SETGID; without
   * them the spawn throws EPERM.
   */
  uid?: number;
  gid?: number;
}

/**
 * Spawn `argv[0]` with `argv[1..]` as the leader of a new process group.
 * Spawn failures (ENOENT, EACCES) arrive as the child's `error` event, as with `spawn`; the
 * returned child then has no `pid`.
 * @throws TypeError if `argv` is empty.
 */
export function spawnProcessGroup(argv: readonly string[], opts: SpawnGroupOptions): ChildProcess {
  const [cmd, ...args] = argv;
  if (!cmd) throw new TypeError("runner command is empty");
  return spawn(cmd, args, {
    detached: true,
    env: opts.env,
    cwd: opts.cwd,
    stdio: opts.stdio ?? ["pipe", "pipe", "pipe"],
    windowsHide: true,
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
  });
}

/**
 * Send `signal` to every process in group `pgid`.
 * @returns false if the group no longer exists (ESRCH); other errors are thrown.
 */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new RangeError(`refusing to signal process group ${pgid}`);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

/**
 * PIDs of the processes whose `/proc/<pid>/<file>` text satisfies `match` (Linux). Processes
 * that exit during the scan are skipped. Returns null where `/proc` cannot be read.
 */
export function scanProcesses(file: "stat" | "status" | "environ", match: (text: string) => boolean): number[] | null {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return null;
  }
  const out: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${e}/${file}`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    if (match(text)) out.push(Number(e));
  }
  return out;
}

/**
 * PIDs of the live (non-zombie) processes in group `pgid`, read from `/proc/<pid>/stat`
 * (Linux). Returns null where `/proc` is not available.
 */
export function processGroupMembers(pgid: number): number[] | null {
  return scanProcesses("stat", (stat) => {
    // Format: pid (comm) state ppid pgrp …; comm may contain spaces and parens, so cut at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] !== "Z" && fields[0] !== "X" && Number(fields[2]) === pgid;
  });
}

/**
 * True while group `pgid` has a live member. `kill(-pgid, 0)` alone also counts zombies, and
 * in a container whose PID 1 does not reap orphans they would linger forever, so when it says
 * "exists" `/proc` is consulted to ignore zombies.
 */
export function processGroupAlive(pgid: number): boolean {
  if (!signalProcessGroup(pgid, 0)) return false;
  const members = processGroupMembers(pgid);
  return members === null ? true : members.length > 0;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitGone(pgid: number, ms: number, pollMs: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (!processGroupAlive(pgid)) return true;
    if (Date.now() >= until) return false;
    await sleep(Math.min(pollMs, Math.max(1, until - Date.now())));
  }
}

/** How `killProcessGroup` ended: the group was already gone, left on SIGTERM, needed SIGKILL. */
export type KillResult = "gone" | "terminated" | "killed";

/**
 * Tear down group `pgid`: SIGTERM, wait up to `graceMs` for every member to exit, then
 * SIGKILL and wait (up to 2 s, SIGKILL cannot be ignored) for the group to be empty.
 * Resolves once nothing is left; never rejects for an already-gone group.
 * @param graceMs grace period after SIGTERM, in ms (config `teardownGraceMs`).
 * @param pollMs how often to check, in ms (default 25).
 */
export async function killProcessGroup(pgid: number, graceMs: number, pollMs = 25): Promise<KillResult> {
  if (!processGroupAlive(pgid)) return "gone";
  signalProcessGroup(pgid, "SIGTERM");
  // SIGTERM does not wake a stopped process; SIGCONT makes sure it gets to handle it.
  signalProcessGroup(pgid, "SIGCONT");
  if (await waitGone(pgid, graceMs, pollMs)) return "terminated";
  signalProcessGroup(pgid, "SIGKILL");
  await waitGone(pgid, 2000, 10);
  return "killed";
}
