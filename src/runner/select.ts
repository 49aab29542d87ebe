/**
 * Which `TurnExecutor` the gateway uses (issue 3): `runnerUrl` set → `RemoteRunnerProxy`
 * (remote mode, nothing is spawned); else `runnerProtocol: "http"` → `HttpRunnerSupervisor`
 * (per-turn subprocess serving AG-UI on `$PORT`); else `LocalRunnerSupervisor` (per-turn
 * subprocess speaking AG-UI JSON lines on stdout, the default).
 */
import type { Config } from "../config.ts";
import { existsSync } from "node:fs";
import { isAbsolute } from "node:path";
import { ConfigError } from "../errors.ts";
import { dataPath } from "../config.ts";
import { HttpRunnerSupervisor } from "./http-runner.ts";
import { RemoteRunnerProxy } from "./remote.ts";
import type { RunnerUidPool } from "./runner-uids.ts";
import { LocalRunnerSupervisor, type SupervisorLogger } from "./supervisor.ts";
import type { TurnExecutor } from "./types.ts";
import type { TurnJournal } from "./turn-journal.ts";

/**
 * Build the executor the configuration asks for. `runnerUids` (from `openRunnerUidPool`) makes
 * spawned runners run under per-turn uids; `journal` records spawned turns for crash recovery
 * (turn-journal.ts). The remote proxy spawns nothing and ignores both.
 * @throws ConfigError for an unusable runner URL template, an empty or missing command (not an
 *   existing absolute path, not on PATH) or a bad host entry.
 */
export function createTurnExecutor(cfg: Config, logger: SupervisorLogger, runnerUids?: RunnerUidPool, journal?: TurnJournal): TurnExecutor {
  if (cfg.runnerUrl) {
    return new RemoteRunnerProxy({
      urlTemplate: cfg.runnerUrl,
      ...(cfg.runnerSessionTokenFile ? { sessionTokenFile: cfg.runnerSessionTokenFile } : {}),
      logger,
    });
  }
  // Found now, not at the first turn (which would only get RUN_ERROR "Runner could not be started").
  const program = cfg.runnerCommand[0] ?? "";
  const found = isAbsolute(program) ? existsSync(program) : Bun.which(program, { PATH: process.env.PATH ?? "" }) !== null;
  if (!found) throw new ConfigError("TURNKEY_RUNNER_COMMAND", `${JSON.stringify(program)} was not found${isAbsolute(program) ? "" : " on PATH (give an absolute path)"}`);
  const local = {
    command: cfg.runnerCommand,
    passthrough: cfg.runnerEnvPassthrough,
    graceMs: cfg.teardownGraceMs,
    githubHosts: cfg.githubHosts,
    gitlabHosts: cfg.gitlabHosts,
    turnsRoot: cfg.turnsDir ?? dataPath(cfg, "turns"),
    logger,
    runnerUids: runnerUids ?? null,
    journal: journal ?? null,
  };
  if (cfg.runnerProtocol === "http") {
    return new HttpRunnerSupervisor({ ...local, ...(cfg.runnerSessionTokenFile ? { sessionTokenFile: cfg.runnerSessionTokenFile } : {}) });
  }
  return new LocalRunnerSupervisor(local);
}
