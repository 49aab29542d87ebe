/**
 * Per-turn OS users for spawned runners (`TURNKEY_RUNNER_UIDS`, DESIGN §7 rule 1). A runner under
 * the gateway's own uid can read the data dir (signing keys, master key, database), the gateway's
 * `/proc/<pid>/environ` and every other turn; a runner under a uid of its own, with supplementary
 * groups dropped, can read only its own turn directory. Each live turn holds one uid of the pool,
 * exclusively, from before its directory is made until its teardown has confirmed that no process
 * of that uid is left (see uid-processes.ts); only then can another turn get it.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, readFileSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import { parseRunnerUids, type Config } from "../config.ts";
import { createTurnDir, giveTurnDir, removeTurnDir, type RunnerIdentity } from "./turn-dir.ts";
import { killUidProcesses, uidProcesses } from "./uid-processes.ts";

/** Re-exported: the uid/gid a turn's runner runs as. */
export type { RunnerIdentity };

/** RUN_ERROR message (code `runner_unavailable`) for a turn refused because every uid is taken. */
export const NO_FREE_RUNNER_UID = "no free runner uid";

/** Options of `RunnerUidPool`. */
export interface RunnerUidPoolOptions {
  /** First and last uid of the pool, inclusive. */
  first: number;
  last: number;
  /** Every runner's gid; default: each runner's gid is its uid. */
  gid?: number;
  /** True while some process has `uid` (default: `/proc` scan; unreadable `/proc` counts as true). */
  inUse?: (uid: number) => boolean;
}

const uidInUse = (uid: number) => uidProcesses(uid)?.length !== 0;

/**
 * The pool of runner uids. Single-threaded bookkeeping: `acquire` and `release` are synchronous.
 * @example
 * const runAs = pool.acquire();              // undefined: refuse the turn (NO_FREE_RUNNER_UID)
 * try { ... spawn with runAs ... } finally { if (await killUidProcesses(runAs.uid)) pool.release(runAs); }
 */
export class RunnerUidPool {
  readonly #first: number;
  readonly #last: number;
  readonly #gid: number | undefined;
  readonly #inUse: (uid: number) => boolean;
  readonly #taken = new Set<number>();

  constructor(opts: RunnerUidPoolOptions) {
    if (!(Number.isInteger(opts.first) && Number.isInteger(opts.last) && opts.first >= 1 && opts.last >= opts.first)) throw new RangeError(`bad runner uid range ${opts.first}-${opts.last}`);
    this.#first = opts.first;
    this.#last = opts.last;
    this.#gid = opts.gid;
    this.#inUse = opts.inUse ?? uidInUse;
  }

  /** Number of uids in the pool. */
  get size(): number {
    return this.#last - this.#first + 1;
  }

  /** Number of uids held by turns (including any kept out because their processes would not die). */
  get taken(): number {
    return this.#taken.size;
  }

  /**
   * Take the lowest uid that no turn holds and no process has (a process left by an earlier
   * gateway, or by another program, keeps its uid out).
   * @returns the identity, or undefined when none is free.
   */
  acquire(): RunnerIdentity | undefined {
    for (let uid = this.#first; uid <= this.#last; uid++) {
      if (this.#taken.has(uid) || this.#inUse(uid)) continue;
      this.#taken.add(uid);
      return { uid, gid: this.#gid ?? uid };
    }
    return undefined;
  }

  /** Give `id.uid` back. Call only once no process of that uid can be alive. */
  release(id: RunnerIdentity): void {
    this.#taken.delete(id.uid);
  }
}

/** Run `argv` as `id` with an empty environment but PATH. @returns the exit status, or the spawn error's code. */
function runAs(id: RunnerIdentity, argv: [string, ...string[]]): number | string {
  try {
    const r = spawnSync(argv[0], argv.slice(1), { uid: id.uid, gid: id.gid, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdio: "ignore", timeout: 10_000 });
    if (r.error) return (r.error as NodeJS.ErrnoException).code ?? String(r.error);
    return r.status ?? `signal ${r.signal}`;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/**
 * Whether the gateway may signal a process of `id` (kill(2) permission: root with CAP_KILL, since
 * the uids differ): start one as `id`, send it signal 0, then sweep the uid.
 * @returns true when allowed, false on EPERM; other failures are thrown.
 */
async function maySignal(id: RunnerIdentity): Promise<boolean> {
  const child = spawn("sleep", ["30"], { uid: id.uid, gid: id.gid, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdio: "ignore" });
  try {
    await new Promise<void>((resolve, reject) => child.once("spawn", resolve).once("error", reject));
    process.kill(child.pid!, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EPERM") return false;
    throw err;
  } finally {
    child.unref();
    await killUidProcesses(id.uid);
  }
}

/** Where `openRunnerUidPool` looks for existing users and groups (tests point elsewhere). */
export interface AccountFiles {
  /** Default `/etc/passwd`. */
  passwd?: string;
  /** Default `/etc/group`. */
  group?: string;
}

/**
 * The first entry of a passwd/group-format file whose id (third field) lies in `first..last`.
 * A missing file has none. @returns `name:id`, or undefined.
 */
function accountInRange(file: string, first: number, last: number): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [name, , id] = line.split(":");
    if (id !== undefined && /^\d+$/.test(id) && Number(id) >= first && Number(id) <= last) return `${name}:${id}`;
  }
  return undefined;
}

/**
 * Build the uid pool from the configuration and prove it works, at start-up. No uid of the range
 * may be a local user (its processes would be swept and its temp files removed at teardown), nor,
 * when each runner's gid is its uid, a local group (the runner would get that group's access).
 * Then, as the first uid, the gateway must be able to: start a process (root, or CAP_SETUID and
 * CAP_SETGID) and signal it (CAP_KILL); hand it a turn directory under `turnsDir` (CAP_CHOWN; every
 * parent traversable), where it can execute an absolute `runnerCommand[0]`; and remove that
 * directory again (CAP_DAC_OVERRIDE). Also tightens the data dir to 0700, which runners must not enter.
 * @returns undefined when `runnerUids` is unset.
 * @throws ConfigError naming TURNKEY_RUNNER_UIDS (a uid/gid in use by a local account, cannot
 *   switch users, signal or clean up after them, or `/proc` unreadable),
 *   TURNKEY_TURNS_DIR (unreachable) or TURNKEY_RUNNER_COMMAND (not executable by runner uids).
 */
export async function openRunnerUidPool(
  cfg: Pick<Config, "runnerUids" | "runnerGid" | "turnsDir" | "dataDir" | "runnerCommand">,
  accounts: AccountFiles = {},
): Promise<RunnerUidPool | undefined> {
  const range = parseRunnerUids(cfg.runnerUids);
  if (!range) return undefined;
  const user = accountInRange(accounts.passwd ?? "/etc/passwd", range.first, range.last);
  if (user) throw new ConfigError("TURNKEY_RUNNER_UIDS", `the range holds the local user ${user}; reserve a range no account uses`);
  const group = cfg.runnerGid === undefined ? accountInRange(accounts.group ?? "/etc/group", range.first, range.last) : undefined;
  if (group) throw new ConfigError("TURNKEY_RUNNER_UIDS", `the range holds the local group ${group} (each runner's gid is its uid); reserve a range no group uses, or set TURNKEY_RUNNER_GID`);
  if (uidProcesses(range.first) === null) throw new ConfigError("TURNKEY_RUNNER_UIDS", "/proc is not readable, so runner processes could not be tracked by uid");
  const probe: RunnerIdentity = { uid: range.first, gid: cfg.runnerGid ?? range.first };
  const r = runAs(probe, ["true"]);
  if (r !== 0) throw new ConfigError("TURNKEY_RUNNER_UIDS", `the gateway cannot start a process as uid ${probe.uid} gid ${probe.gid} (${r}); it needs root or CAP_SETUID and CAP_SETGID`);
  // Interrupts (SIGINT) and graceful teardown (SIGTERM) signal the runner's process group.
  if (!(await maySignal(probe))) throw new ConfigError("TURNKEY_RUNNER_UIDS", `the gateway cannot signal processes of uid ${probe.uid}; it needs root with CAP_KILL (interrupts and graceful teardown)`);
  chmodSync(cfg.dataDir, 0o700);
  if (!cfg.turnsDir) throw new ConfigError("TURNKEY_TURNS_DIR", "not set");
  const dir = await createTurnDir(cfg.turnsDir, { traversable: true }).catch((err) => {
    throw new ConfigError("TURNKEY_TURNS_DIR", `cannot create a turn directory in ${cfg.turnsDir}: ${String(err)}`);
  });
  try {
    await giveTurnDir(dir, probe).catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError("TURNKEY_RUNNER_UIDS", `the gateway cannot hand a turn directory to uid ${probe.uid} (${err.code ?? err.message}); it needs root with CAP_CHOWN`);
    });
    const cmd = cfg.runnerCommand[0] ?? "";
    const check = runAs(probe, ["/bin/sh", "-c", 'cd -- "$1" || exit 10; case "$2" in /*) test -x "$2" || exit 11;; esac', "sh", dir, cmd]);
    if (check === 10) throw new ConfigError("TURNKEY_TURNS_DIR", `runner uids cannot reach ${cfg.turnsDir}: every parent directory must be searchable by others (o+x)`);
    if (check === 11) throw new ConfigError("TURNKEY_RUNNER_COMMAND", `${cmd} is not executable by runner uid ${probe.uid} (check the file and its parent directories)`);
    if (check !== 0) throw new ConfigError("TURNKEY_RUNNER_UIDS", `a probe as uid ${probe.uid} failed (${check})`);
  } finally {
    // A turn dir handed to a runner uid is 0700 and theirs: removing it takes CAP_DAC_OVERRIDE.
    await removeTurnDir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EACCES" && err.code !== "EPERM") throw err;
      throw new ConfigError("TURNKEY_RUNNER_UIDS", `the gateway cannot remove a turn directory of uid ${probe.uid} (${err.code}); it needs root with CAP_DAC_OVERRIDE`);
    });
  }
  return new RunnerUidPool({ ...range, ...(cfg.runnerGid !== undefined ? { gid: cfg.runnerGid } : {}) });
}
