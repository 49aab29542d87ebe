/**
 * What the two supervisors that spawn a runner per turn (local stdio, `supervisor.ts`, and HTTP,
 * `http-runner.ts`) share around the spawn: their common options, checked and copied once; the
 * turn's runner identity and directory (`SpawnedTurn`: with a runner uid pool, a uid of its own
 * and a directory only that uid can use, DESIGN §7 rule 1); and the teardown of a turn's process
 * group, uid and private directory (DESIGN §2.1 step 9, §7 rule 2).
 */
import { normalizeGitHost } from "../credentials/git.ts";
import type { TurnFile } from "../credentials/turn-environment.ts";
import { ConfigError } from "../errors.ts";
import { killProcessGroup } from "./process-group.ts";
import type { RunnerUidPool } from "./runner-uids.ts";
import type { SecretScrubber } from "./scrub.ts";
import type { LocalRunnerOptions, SupervisorLogger } from "./supervisor.ts";
import { createTurnDir, giveTurnDir, removeTurnDir, writeTurnFiles, type RunnerIdentity } from "./turn-dir.ts";
import { killUidProcesses, removeUidLeftovers } from "./uid-processes.ts";
import type { JournalEntry, TurnJournal } from "./turn-journal.ts";

/** The options both spawning supervisors take (see `LocalRunnerOptions` for each field). */
export type SpawnedTurnOptions = Pick<LocalRunnerOptions, "command" | "passthrough" | "graceMs" | "githubHosts" | "gitlabHosts" | "turnsRoot" | "baseEnv" | "runnerUids" | "journal">;

/**
 * Check the common options and copy them, defaults filled in (`passthrough` none, `baseEnv`
 * `process.env`), so later changes to the caller's arrays do not reach the supervisor.
 * @throws ConfigError (setting `runnerCommand`) for an empty command; ConfigError (setting
 *   `githubHosts`/`gitlabHosts`) for a malformed host entry, as `normalizeGitHost`.
 */
export function spawnedTurnOptions(opts: SpawnedTurnOptions): Required<SpawnedTurnOptions> {
  if (opts.command.length === 0 || !opts.command[0]) throw new ConfigError("TURNKEY_RUNNER_COMMAND", "empty command");
  for (const h of opts.githubHosts) normalizeGitHost(h, "TURNKEY_GITHUB_HOSTS");
  for (const h of opts.gitlabHosts) normalizeGitHost(h, "TURNKEY_GITLAB_HOSTS");
  return {
    command: [...opts.command],
    passthrough: [...(opts.passthrough ?? [])],
    graceMs: opts.graceMs,
    githubHosts: [...opts.githubHosts],
    gitlabHosts: [...opts.gitlabHosts],
    turnsRoot: opts.turnsRoot,
    baseEnv: opts.baseEnv ?? process.env,
    runnerUids: opts.runnerUids ?? null,
    journal: opts.journal ?? null,
  };
}

/**
 * One turn's runner identity and directory, from before the spawn to the end of teardown.
 * Without a uid pool the runner runs as the gateway and the directory stays the gateway's.
 * @example
 * const turn = new SpawnedTurn(o);
 * try {
 *   if (!turn.acquire()) return refuse(NO_FREE_RUNNER_UID);
 *   const dir = await turn.makeDir();
 *   await turn.writeFiles(te.files);
 *   spawnProcessGroup(o.command, { env: turn.env(te.env), cwd: dir, ...turn.runAs });
 * } finally { await turn.tearDown({ pid, graceMs, log, meta, scrubber }); }
 */
export class SpawnedTurn {
  readonly #root: string;
  readonly #pool: RunnerUidPool | null;
  readonly #journal: TurnJournal | null;
  #runAs: RunnerIdentity | undefined;
  #dir: string | undefined;
  #journalId: string | undefined;

  constructor(o: { turnsRoot: string; runnerUids: RunnerUidPool | null; journal?: TurnJournal | null }) {
    this.#root = o.turnsRoot;
    this.#pool = o.runnerUids;
    this.#journal = o.journal ?? null;
  }

  /** The runner's uid:gid (spread it into the spawn options); undefined = the gateway's own. */
  get runAs(): RunnerIdentity | undefined {
    return this.#runAs;
  }

  /** The turn directory once `makeDir` succeeded. */
  get dir(): string | undefined {
    return this.#dir;
  }

  /**
   * Take a uid from the pool, if there is one. @returns false when the pool is exhausted: the
   * caller refuses the turn with RUN_ERROR `runner_unavailable` `NO_FREE_RUNNER_UID`.
   */
  acquire(): boolean {
    if (!this.#pool) return true;
    this.#runAs = this.#pool.acquire();
    return this.#runAs !== undefined;
  }

  /**
   * Create the turn directory (root 0711 with a uid pool, else 0700) and journal the turn, so a
   * gateway crash is cleaned up at the next start (turn-journal.ts); `run` names the turn there.
   * @throws as `createTurnDir`, or the journal's fs error.
   */
  async makeDir(run?: JournalEntry["run"]): Promise<string> {
    this.#dir = await createTurnDir(this.#root, { traversable: this.#pool !== null });
    this.#journalId = this.#journal?.record({ turnDir: this.#dir, ...(this.#runAs ? { uid: this.#runAs.uid } : {}), ...(run ? { run } : {}) });
    return this.#dir;
  }

  /** Write the turn files, then hand the directory to the runner's uid (if any). @throws fs errors. */
  async writeFiles(files: readonly TurnFile[]): Promise<void> {
    if (!this.#dir) throw new Error("turn directory not created");
    await writeTurnFiles(this.#dir, files);
    if (this.#runAs) await giveTurnDir(this.#dir, this.#runAs);
  }

  /** The runner's environment: `base`, plus `TMPDIR` = the turn directory under a pooled uid (its temp files go with the turn). */
  env(base: Record<string, string>): Record<string, string> {
    return this.#runAs && this.#dir ? { ...base, TMPDIR: this.#dir } : base;
  }

  /** `tearDownSpawnedTurn` for this turn's directory and uid, then the journal entry goes. Never rejects. */
  async tearDown(t: Omit<SpawnedTurnTeardown, "turnDir" | "runAs" | "runnerUids">): Promise<void> {
    await tearDownSpawnedTurn({ ...t, ...(this.#dir ? { turnDir: this.#dir } : {}), ...(this.#runAs && this.#pool ? { runAs: this.#runAs, runnerUids: this.#pool } : {}) });
    if (this.#journalId) this.#journal?.remove(this.#journalId);
  }
}

/** What `tearDownSpawnedTurn` removes, and where it reports. */
export interface SpawnedTurnTeardown {
  /** Process group ID (the runner's PID); nothing is killed when unset (no runner was spawned). */
  pid?: number;
  /** The turn directory; nothing is removed when unset (it was never created). */
  turnDir?: string;
  /** SIGTERM → SIGKILL grace period, ms (config `teardownGraceMs`). */
  graceMs: number;
  log: SupervisorLogger;
  /** Fields logged with every line (project, session, runId). */
  meta: object;
  /** Scrubs the turn's secrets out of logged errors. */
  scrubber: SecretScrubber;
  /** The turn's pooled runner identity; with `runnerUids`, swept and given back (see below). */
  runAs?: RunnerIdentity;
  runnerUids?: RunnerUidPool;
}

/**
 * Kill the turn's process group (SIGTERM, SIGKILL after `graceMs`), then, under a pooled uid,
 * SIGKILL every remaining process of that uid (one that left the group with `setsid` included),
 * then remove its directory; last, under a pooled uid, remove the uid's files in the shared temp
 * dirs and give the uid back to the pool, but only if no process of it was left alive (else it
 * stays out of the pool for good, logged at error: handing it on would let the next turn reach
 * those processes). Never rejects: a failure of any step is logged at error (scrubbed) and the
 * others still run; the kill is logged at debug with how the group ended.
 */
export async function tearDownSpawnedTurn(t: SpawnedTurnTeardown): Promise<void> {
  if (t.pid) {
    try {
      const how = await killProcessGroup(t.pid, t.graceMs);
      t.log.debug({ ...t.meta, pgid: t.pid, how }, "runner process group torn down");
    } catch (err) {
      t.log.error({ ...t.meta, err: t.scrubber.scrub(String(err)) }, "could not kill runner process group");
    }
  }
  let uidIdle = false;
  if (t.runAs) {
    try {
      uidIdle = await killUidProcesses(t.runAs.uid);
    } catch (err) {
      t.log.error({ ...t.meta, uid: t.runAs.uid, err: String(err) }, "could not sweep runner uid");
    }
  }
  if (t.turnDir) {
    try {
      await removeTurnDir(t.turnDir);
    } catch (err) {
      t.log.error({ ...t.meta, err: t.scrubber.scrub(String(err)) }, "could not remove turn directory");
    }
  }
  if (t.runAs && t.runnerUids) {
    if (!uidIdle) {
      t.log.error({ ...t.meta, uid: t.runAs.uid }, "runner uid still has live processes; kept out of the pool");
      return;
    }
    const removed = await removeUidLeftovers(t.runAs.uid).catch(() => 0);
    if (removed > 0) t.log.debug({ ...t.meta, uid: t.runAs.uid, removed }, "removed runner uid's temp files");
    t.runnerUids.release(t.runAs);
  }
}
