/**
 * What the two supervisors that spawn a runner per turn (local stdio, `supervisor.ts`, and HTTP,
 * `http-runner.ts`) share around the spawn: their common options, checked and copied once, and
 * the teardown of a turn's process group and private directory (DESIGN §2.1 step 9, §7 rule 2).
 */
import { normalizeGitHost } from "../credentials/git.ts";
import { ConfigError } from "../errors.ts";
import { killProcessGroup } from "./process-group.ts";
import type { SecretScrubber } from "./scrub.ts";
import type { LocalRunnerOptions, SupervisorLogger } from "./supervisor.ts";
import { removeTurnDir } from "./turn-dir.ts";

/** The options both spawning supervisors take (see `LocalRunnerOptions` for each field). */
export type SpawnedTurnOptions = Pick<LocalRunnerOptions, "command" | "passthrough" | "graceMs" | "githubHosts" | "gitlabHosts" | "turnsRoot" | "baseEnv">;

/**
 * Check the common options and copy them, defaults filled in (`passthrough` none, `baseEnv`
 * `process.env`), so later changes to the caller's arrays do not reach the supervisor.
 * @throws ConfigError (setting `runnerCommand`) for an empty command; ConfigError (setting
 *   `githubHosts`/`gitlabHosts`) for a malformed host entry, as `normalizeGitHost`.
 */
export function spawnedTurnOptions(opts: SpawnedTurnOptions): Required<SpawnedTurnOptions> {
  if (opts.command.length === 0 || !opts.command[0]) throw new ConfigError("runnerCommand", "empty command");
  for (const h of opts.githubHosts) normalizeGitHost(h, "githubHosts");
  for (const h of opts.gitlabHosts) normalizeGitHost(h, "gitlabHosts");
  return {
    command: [...opts.command],
    passthrough: [...(opts.passthrough ?? [])],
    graceMs: opts.graceMs,
    githubHosts: [...opts.githubHosts],
    gitlabHosts: [...opts.gitlabHosts],
    turnsRoot: opts.turnsRoot,
    baseEnv: opts.baseEnv ?? process.env,
  };
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
}

/**
 * Kill the turn's process group (SIGTERM, SIGKILL after `graceMs`), then remove its directory.
 * Never rejects: a failure of either step is logged at error (scrubbed) and the other step
 * still runs; the kill is logged at debug with how the group ended.
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
  if (t.turnDir) {
    try {
      await removeTurnDir(t.turnDir);
    } catch (err) {
      t.log.error({ ...t.meta, err: t.scrubber.scrub(String(err)) }, "could not remove turn directory");
    }
  }
}
