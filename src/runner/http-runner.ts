/**
 * Spawned HTTP runners (issue 3 scope 2, `TURNKEY_RUNNER_PROTOCOL=http`): per turn, the runner
 * command is spawned exactly like a local stdio runner (own process group, private turn
 * directory, allowlisted environment with the sender's credentials, DESIGN §2.1 step 6) plus
 * `PORT=<free loopback port>`. Turnkey waits for `GET http://127.0.0.1:$PORT/health` → 2xx,
 * POSTs the RunAgentInput to `/` and relays the SSE answer with the remote proxy's core
 * (src/runner/sse-relay.ts); then the process group and turn directory are torn down in
 * `finally` on every path (DESIGN §7 rule 2). This is how a runner built for the upstream
 * platform runs as a per-turn subprocess.
 *
 * Port choice: the gateway binds 127.0.0.1:0, reads the port the kernel picked and closes the
 * socket before spawning (upstream runners only take `PORT`; they cannot report a port back).
 * Another local process could take the port in between: the runner then fails to bind and
 * exits (→ RUN_ERROR), or, in the worst case, that process answers `/health` and receives the
 * turn's request, turn token included. Hosts where untrusted local users run code should use
 * the stdio protocol or a remote runner in its own network namespace. The runner should bind
 * 127.0.0.1; one that binds 0.0.0.0 is reachable from the network for the turn's duration.
 */
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { buildTurnEnvironment } from "../credentials/turn-environment.ts";
import type { RunRef, TurnContext, TurnEmit, TurnExecutor, TurnOutcome } from "./types.ts";
import { LineSplitter } from "./events.ts";
import { LiveTurns, runRef, type LiveTurn } from "./live-turns.ts";
import { SpawnedTurn, spawnedTurnOptions } from "./spawned-turn.ts";
import { NO_FREE_RUNNER_UID, type RunnerIdentity } from "./runner-uids.ts";
import { spawnProcessGroup } from "./process-group.ts";
import { SecretScrubber } from "./scrub.ts";
import { RUNNER_ERROR_CODES, type LocalRunnerOptions, type SupervisorLogger } from "./supervisor.ts";
import { MAX_RUNNER_EVENT_BYTES, PassThroughStream, relayTurn, type StopReason } from "./sse-relay.ts";
import { readSessionToken, runnerHeaders } from "./runner-request.ts";
import { unknownCapabilities } from "./remote.ts";
import { waitUntil } from "./wait.ts";

/** Options of `HttpRunnerSupervisor`: those of the local supervisor, plus the HTTP ones. */
export interface HttpRunnerOptions extends Pick<LocalRunnerOptions, "command" | "passthrough" | "graceMs" | "githubHosts" | "gitlabHosts" | "turnsRoot" | "logger" | "baseEnv" | "runnerUids"> {
  /** How long to wait for `GET /health` → 2xx after spawning, ms; default 30000. */
  healthTimeoutMs?: number;
  /** After the runner exits mid-stream, how long to keep reading its socket, ms; default 250. */
  exitDrainMs?: number;
  /** Largest SSE event accepted, bytes; default `MAX_RUNNER_EVENT_BYTES`. */
  maxEventBytes?: number;
  /** File holding the token sent as `X-Ambient-Session-Token`, read per turn (config `runnerSessionTokenFile`). */
  sessionTokenFile?: string;
  /** Runner stdout+stderr logged per turn (scrubbed, debug level), bytes; default 64 KiB. */
  maxOutputLogBytes?: number;
}

const SHUTDOWN: StopReason = { message: "Gateway is shutting down", code: RUNNER_ERROR_CODES.shutdown, status: "aborted" };
const noop = () => {};
const silent: SupervisorLogger = { debug: noop, info: noop, warn: noop, error: noop };

/**
 * A free TCP port on 127.0.0.1: bind port 0, read the kernel's choice, close.
 * @throws the listen error (e.g. no loopback interface).
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/**
 * Runs each turn as a subprocess serving AG-UI over HTTP on `$PORT`.
 * @example
 * const sup = new HttpRunnerSupervisor({ command: ["python", "/app/main.py"], graceMs: 5000,
 *   githubHosts: ["github.com"], gitlabHosts: ["gitlab.com"], turnsRoot: "/var/lib/turnkey/turns" });
 */
export class HttpRunnerSupervisor implements TurnExecutor {
  #o: Required<Omit<HttpRunnerOptions, "logger" | "sessionTokenFile">> & { sessionTokenFile?: string };
  #log: SupervisorLogger;
  #turns = new LiveTurns<LiveTurn>();

  /** @throws ConfigError for an empty command or a malformed host entry. */
  constructor(opts: HttpRunnerOptions) {
    this.#o = {
      ...spawnedTurnOptions(opts),
      healthTimeoutMs: opts.healthTimeoutMs ?? 30_000,
      exitDrainMs: opts.exitDrainMs ?? 250,
      maxEventBytes: opts.maxEventBytes ?? MAX_RUNNER_EVENT_BYTES,
      maxOutputLogBytes: opts.maxOutputLogBytes ?? 64 * 1024,
      ...(opts.sessionTokenFile ? { sessionTokenFile: opts.sessionTokenFile } : {}),
    };
    this.#log = opts.logger ?? silent;
  }

  /** Number of turns currently executing (set up, running or tearing down). */
  get liveTurns(): number {
    return this.#turns.size;
  }

  /** See `TurnExecutor.execute`. Never rejects. */
  execute(ctx: TurnContext, emit: TurnEmit): Promise<TurnOutcome> {
    return this.#turns.track({ ...runRef(ctx), stop: new AbortController() }, (live) => this.#execute(ctx, emit, live));
  }

  /** SIGINT to the process group of every live turn with this run ID (as the local supervisor). @returns true if signalled. */
  interrupt(ref: RunRef): boolean {
    return this.#turns.interrupt(ref, this.#log);
  }

  /** A spawned runner exists only during a turn, so nothing can be asked: `UNKNOWN_CAPABILITIES`. */
  async capabilities(): Promise<Record<string, unknown>> {
    return unknownCapabilities();
  }

  /** End every live turn (RUN_ERROR `gateway_shutdown`) and wait for their teardown. New turns are refused. */
  async shutdown(): Promise<void> {
    await this.#turns.shutdown(SHUTDOWN);
  }

  async #execute(ctx: TurnContext, emit: TurnEmit, live: LiveTurn): Promise<TurnOutcome> {
    const meta = { project: ctx.project, session: ctx.session, runId: ctx.runId };
    const log = this.#log;
    const o = this.#o;
    const stream = new PassThroughStream(ctx, emit, (err) => log.debug({ ...meta, err: String(err) }, "event consumer failed"));
    let scrubber = new SecretScrubber([ctx.turnToken]);
    const turn = new SpawnedTurn(o);
    let outcome: TurnOutcome | undefined;
    const fail = (message: string, code: string, status: TurnOutcome["status"] = "error"): TurnOutcome => {
      stream.fail(message, code);
      return { status, message };
    };
    try {
      if (this.#turns.closed) return (outcome = fail(SHUTDOWN.message, SHUTDOWN.code, "aborted"));
      if (!turn.acquire()) {
        log.warn(meta, "turn refused: no free runner uid");
        return (outcome = fail(NO_FREE_RUNNER_UID, RUNNER_ERROR_CODES.unavailable));
      }
      let turnDir: string;
      let env: Record<string, string>;
      let sessionToken: string | undefined;
      let port: number;
      try {
        turnDir = await turn.makeDir({ ...runRef(ctx), userId: ctx.userId });
        const te = buildTurnEnvironment(ctx, { turnDir, ...o });
        sessionToken = await readSessionToken(o.sessionTokenFile, log);
        scrubber = new SecretScrubber([...te.secrets, sessionToken]);
        await turn.writeFiles(te.files);
        port = await freeLoopbackPort();
        env = turn.env({ ...te.env, PORT: String(port) });
      } catch (err) {
        log.error({ ...meta, err: scrubber.scrub(String(err)) }, "turn setup failed");
        return (outcome = fail("Turn environment could not be prepared", RUNNER_ERROR_CODES.setup));
      }
      const proc = this.#spawn(env, turnDir, scrubber, meta, live, turn.runAs);
      if (!proc) return (outcome = fail("Runner could not be started", RUNNER_ERROR_CODES.unavailable));
      const base = `http://127.0.0.1:${port}`;
      const ready = await this.#waitHealthy(`${base}/health`, ctx, live);
      if (ready !== "ready") {
        if (ready === "stopped") {
          const r = stopReasonOf(ctx, live);
          return (outcome = fail(r.message, r.code, r.status));
        }
        log.warn({ ...meta, healthTimeoutMs: o.healthTimeoutMs }, "runner did not become healthy");
        return (outcome = fail(`Runner did not become ready within ${o.healthTimeoutMs} ms`, RUNNER_ERROR_CODES.unavailable));
      }
      const headers = runnerHeaders(ctx, sessionToken, { "Content-Type": "application/json", Accept: "text/event-stream" });
      outcome = await relayTurn(ctx, { url: `${base}/`, headers, scrubber, stream, retry: null, stop: live.stop.signal, maxEventBytes: o.maxEventBytes, logger: log });
      if (proc.exitCode !== null) outcome.exitCode = proc.exitCode;
      return outcome;
    } catch (err) {
      log.error({ ...meta, err: scrubber.scrub(String(err)) }, "http runner turn failed");
      return (outcome = fail("Internal error while running the turn", RUNNER_ERROR_CODES.setup));
    } finally {
      await turn.tearDown({ pid: live.pid, graceMs: this.#o.graceMs, log: this.#log, meta, scrubber });
      log.info({ ...meta, status: outcome?.status }, "turn ended");
    }
  }

  /** Spawn the runner; its exit stops the turn (after `exitDrainMs`). Output is drained and logged, bounded and scrubbed. */
  #spawn(env: Record<string, string>, cwd: string, scrubber: SecretScrubber, meta: object, live: LiveTurn, runAs: RunnerIdentity | undefined): ChildProcess | undefined {
    const log = this.#log;
    let proc: ChildProcess;
    try {
      proc = spawnProcessGroup(this.#o.command, { env, cwd, stdio: ["ignore", "pipe", "pipe"], ...runAs });
    } catch (err) {
      log.error({ ...meta, err: scrubber.scrub(String(err)) }, "runner could not be started");
      return undefined;
    }
    proc.on("error", (err) => log.warn({ ...meta, err: scrubber.scrub(String(err)) }, "runner process error"));
    if (proc.pid === undefined) return undefined;
    live.pid = proc.pid;
    let logged = 0;
    const max = this.#o.maxOutputLogBytes;
    for (const [name, pipe] of [["stdout", proc.stdout], ["stderr", proc.stderr]] as const) {
      const lines = new LineSplitter(4096, (line, truncated) => {
        if (logged >= max) return;
        logged += Buffer.byteLength(line);
        log.debug({ ...meta, [name]: truncated ? scrubber.scrubTruncated(line) : scrubber.scrub(line) }, `runner ${name}`);
      });
      pipe?.on("data", (c: Buffer) => lines.push(c));
      pipe?.on("end", () => lines.end());
    }
    proc.on("exit", (code, signal) => {
      const how = code !== null ? `exited with code ${code}` : `was killed by ${signal}`;
      log.warn({ ...meta, exitCode: code, signal }, "runner process exited");
      const reason: StopReason = { message: `Runner ${how} before finishing the run`, code: RUNNER_ERROR_CODES.exited, status: "error" };
      setTimeout(() => live.stop.abort(reason), this.#o.exitDrainMs).unref?.();
    });
    return proc;
  }

  /** Poll `GET url` until 2xx ("ready"), the health timeout ("timeout"), or an abort/exit/deadline ("stopped"). */
  async #waitHealthy(url: string, ctx: TurnContext, live: LiveTurn): Promise<"ready" | "timeout" | "stopped"> {
    const until = Date.now() + this.#o.healthTimeoutMs;
    const stopped = () => ctx.signal.aborted || live.stop.signal.aborted || Date.now() >= ctx.deadline;
    let delay = 50;
    while (!stopped()) {
      const left = Math.min(until, ctx.deadline) - Date.now();
      if (left <= 0) break;
      try {
        const signal = AbortSignal.any([ctx.signal, live.stop.signal, AbortSignal.timeout(Math.min(2000, left))]);
        const res = await fetch(url, { signal, redirect: "manual" });
        void res.body?.cancel().catch(() => {});
        if (res.ok) return "ready";
      } catch {
        // not listening yet
      }
      await waitUntil(Math.min(delay, Math.max(0, until - Date.now())), [ctx.signal, live.stop.signal]);
      delay = Math.min(500, delay * 2);
    }
    return stopped() ? "stopped" : "timeout";
  }
}

/** Why the health wait stopped: the turn's own stop reason, the client, or the deadline. */
function stopReasonOf(ctx: TurnContext, live: LiveTurn): StopReason {
  const r = live.stop.signal.reason as StopReason | undefined;
  if (live.stop.signal.aborted && r?.code) return r;
  if (ctx.signal.aborted) return { message: "Turn aborted", code: RUNNER_ERROR_CODES.aborted, status: "aborted" };
  return { message: "Turn exceeded its time limit", code: RUNNER_ERROR_CODES.timeout, status: "timeout" };
}

