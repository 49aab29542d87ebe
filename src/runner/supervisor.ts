/**
 * The local runner supervisor (DESIGN §2.1 steps 6-9): one subprocess per turn, in a private
 * turn directory, in its own process group, with an environment built from an allowlist plus
 * the sender's credentials. Its stdout is read as AG-UI events, validated, scrubbed of every
 * secret injected for the turn and streamed; teardown (process group, turn directory) happens
 * in `finally` on every path before `execute` resolves (DESIGN §7 rule 2).
 *
 * Secrets go to the child through `spawn`'s `env` and files in the turn directory only; the
 * gateway's own `process.env` is never touched (DESIGN §3, §7 rule 3).
 */
import type { ChildProcess } from "node:child_process";
import type { BaseEvent } from "@ag-ui/core";
import { EventType } from "@ag-ui/core";
import { buildTurnEnvironment } from "../credentials/turn-environment.ts";
import { TurnAbort, type RunRef, type TurnContext, type TurnExecutor, type TurnOutcome } from "./types.ts";
import { LineSplitter, MAX_EVENT_LINE_BYTES, parseEventLine } from "./events.ts";
import { LiveTurns, runRef, type LiveTurn } from "./live-turns.ts";
import { SpawnedTurn, spawnedTurnOptions } from "./spawned-turn.ts";
import { NO_FREE_RUNNER_UID, type RunnerIdentity, type RunnerUidPool } from "./runner-uids.ts";
import { spawnProcessGroup } from "./process-group.ts";
import { RunStream } from "./run-stream.ts";
import { SecretScrubber } from "./scrub.ts";
import type { TurnJournal } from "./turn-journal.ts";

/** Minimal pino-compatible logger. */
export interface SupervisorLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Options of `LocalRunnerSupervisor`. */
export interface LocalRunnerOptions {
  /** Runner argv (config `runnerCommand`). Its cwd is the turn directory: use absolute paths. */
  command: readonly string[];
  /** Extra variable names passed from `baseEnv` (config `runnerEnvPassthrough`). */
  passthrough?: readonly string[];
  /** SIGTERM → SIGKILL grace period in ms (config `teardownGraceMs`). */
  graceMs: number;
  /** Hosts the git credential helper answers for (config `githubHosts`/`gitlabHosts`). */
  githubHosts: readonly string[];
  gitlabHosts: readonly string[];
  /** Parent of the turn directories (config `turnsDir`); created 0700, or 0711 with `runnerUids`. */
  turnsRoot: string;
  /** Per-turn runner uids (config `runnerUids`, see runner-uids.ts); unset = runners run as the gateway's user. */
  runnerUids?: RunnerUidPool | null;
  /** Where live turns are journalled for crash recovery (turn-journal.ts); unset = not journalled. */
  journal?: TurnJournal | null;
  logger?: SupervisorLogger;
  /** Where allowlisted/passthrough variables are read from; default `process.env`. */
  baseEnv?: Record<string, string | undefined>;
  /** Longest accepted stdout line in bytes; default 1 MiB. */
  maxLineBytes?: number;
  /** stderr logged per turn, bytes (default 64 KiB), and per line (default 4 KiB). */
  maxStderrBytes?: number;
  maxStderrLineBytes?: number;
  /** After the runner exits, how long to wait (ms) for its stdout to close; default 250. */
  exitDrainMs?: number;
}

/** Synthesised RUN_ERROR codes. */
export const RUNNER_ERROR_CODES = {
  exited: "runner_exited",
  unavailable: "runner_unavailable",
  setup: "turn_setup_failed",
  timeout: "turn_timeout",
  aborted: "turn_aborted",
  shutdown: "gateway_shutdown",
} as const;

const SHUTDOWN = Symbol("shutdown");
const MAX_TIMER_MS = 2 ** 31 - 1;
const STDERR_TAIL_LINES = 20;
const noop = () => {};
const silent: SupervisorLogger = { debug: noop, info: noop, warn: noop, error: noop };

/**
 * Runs each turn as a local subprocess speaking AG-UI JSON lines on stdout.
 * @example
 * const sup = new LocalRunnerSupervisor({ command: ["bun", "/abs/runner.ts"], graceMs: 5000,
 *   githubHosts: ["github.com"], gitlabHosts: ["gitlab.com"], turnsRoot: "/var/lib/turnkey/turns" });
 * const outcome = await sup.execute(ctx, (event) => sse.send(event));
 */
export class LocalRunnerSupervisor implements TurnExecutor {
  #o: Required<Omit<LocalRunnerOptions, "logger">>;
  #log: SupervisorLogger;
  #turns = new LiveTurns<LiveTurn>();

  /** @throws ConfigError for an empty command or a malformed host entry. */
  constructor(opts: LocalRunnerOptions) {
    this.#o = {
      ...spawnedTurnOptions(opts),
      maxLineBytes: opts.maxLineBytes ?? MAX_EVENT_LINE_BYTES,
      maxStderrBytes: opts.maxStderrBytes ?? 64 * 1024,
      maxStderrLineBytes: opts.maxStderrLineBytes ?? 4 * 1024,
      exitDrainMs: opts.exitDrainMs ?? 250,
    };
    this.#log = opts.logger ?? silent;
  }

  /** Number of turns currently executing (set up, running or tearing down). */
  get liveTurns(): number {
    return this.#turns.size;
  }

  /** See `TurnExecutor.execute`. Never rejects. */
  execute(ctx: TurnContext, emit: (event: BaseEvent) => void): Promise<TurnOutcome> {
    return this.#turns.track({ ...runRef(ctx), stop: new AbortController() }, (live) => this.#execute(ctx, emit, live));
  }

  /**
   * Send SIGINT to the process group of every live turn with this run ID; the runner decides
   * how to wind down (it should still end with a terminal event). @returns true if signalled.
   */
  interrupt(ref: RunRef): boolean {
    return this.#turns.interrupt(ref, this.#log);
  }

  /** Abort every live turn (RUN_ERROR `gateway_shutdown`) and wait for their teardown. New turns are refused. */
  async shutdown(): Promise<void> {
    await this.#turns.shutdown(SHUTDOWN);
  }

  async #execute(ctx: TurnContext, emit: (event: BaseEvent) => void, live: LiveTurn): Promise<TurnOutcome> {
    const meta = { project: ctx.project, session: ctx.session, runId: ctx.runId };
    const log = this.#log;
    const stream = new RunStream(ctx, emit, (err) => log.debug({ ...meta, err: String(err) }, "event consumer failed"));
    // Until the environment is built, hide at least the turn token.
    let scrubber = new SecretScrubber([ctx.turnToken]);
    const turn = new SpawnedTurn(this.#o);
    const child: { proc?: ChildProcess } = {};
    let outcome: TurnOutcome;
    try {
      if (this.#turns.closed) {
        stream.fail("Gateway is shutting down", RUNNER_ERROR_CODES.shutdown);
        return { status: "aborted", message: "Gateway is shutting down" };
      }
      if (!turn.acquire()) {
        log.warn(meta, "turn refused: no free runner uid");
        stream.fail(NO_FREE_RUNNER_UID, RUNNER_ERROR_CODES.unavailable);
        return { status: "error", message: NO_FREE_RUNNER_UID };
      }
      try {
        const turnDir = await turn.makeDir({ ...runRef(ctx), userId: ctx.userId });
        const te = buildTurnEnvironment(ctx, { turnDir, ...this.#o });
        scrubber = new SecretScrubber(te.secrets);
        await turn.writeFiles(te.files);
        outcome = await this.#run(ctx, turn.env(te.env), turnDir, scrubber, stream, live, child, turn.runAs);
      } catch (err) {
        log.error({ ...meta, err: scrubber.scrub(String(err)) }, "turn setup failed");
        stream.fail("Turn environment could not be prepared", RUNNER_ERROR_CODES.setup);
        outcome = { status: "error", message: "Turn environment could not be prepared" };
      }
    } finally {
      await turn.tearDown({ pid: live.pid, graceMs: this.#o.graceMs, log: this.#log, meta, scrubber });
    }
    const p = child.proc;
    if (p && outcome.exitCode === undefined && (p.exitCode !== null || p.signalCode !== null)) outcome.exitCode = p.exitCode;
    log.info({ ...meta, status: outcome.status, exitCode: outcome.exitCode }, "turn ended");
    return outcome;
  }

  /** Spawn and stream until a terminal event, exit, abort or deadline. Resolves without teardown. */
  #run(
    ctx: TurnContext,
    env: Record<string, string>,
    turnDir: string,
    scrubber: SecretScrubber,
    stream: RunStream,
    live: LiveTurn,
    child: { proc?: ChildProcess },
    runAs: RunnerIdentity | undefined,
  ): Promise<TurnOutcome> {
    const o = this.#o;
    const log = this.#log;
    const meta = { project: ctx.project, session: ctx.session, runId: ctx.runId };
    return new Promise<TurnOutcome>((resolve) => {
      const cleanups: (() => void)[] = [];
      let settled = false;
      const end = (outcome: TurnOutcome, error?: { message: string; code: string }) => {
        if (settled) return;
        settled = true;
        if (error) stream.fail(error.message, error.code);
        for (const c of cleanups) c();
        resolve(outcome);
      };
      const onAbort = (signal: AbortSignal) => {
        if (signal.reason instanceof TurnAbort) {
          const { message, code } = signal.reason;
          return end({ status: "aborted", message }, { message, code });
        }
        const shutdown = signal.reason === SHUTDOWN;
        const message = shutdown ? "Gateway is shutting down" : "Turn aborted";
        end({ status: "aborted", message }, { message, code: shutdown ? RUNNER_ERROR_CODES.shutdown : RUNNER_ERROR_CODES.aborted });
      };
      for (const signal of [ctx.signal, live.stop.signal]) {
        if (signal.aborted) return onAbort(signal);
        const h = () => onAbort(signal);
        signal.addEventListener("abort", h, { once: true });
        cleanups.push(() => signal.removeEventListener("abort", h));
      }
      const timeout = () => {
        const message = "Turn exceeded its time limit";
        end({ status: "timeout", message }, { message, code: RUNNER_ERROR_CODES.timeout });
      };
      const remainingMs = ctx.deadline - Date.now();
      if (remainingMs <= 0) return timeout();
      const timer = setTimeout(timeout, Math.min(remainingMs, MAX_TIMER_MS));
      cleanups.push(() => clearTimeout(timer));

      const cannotStart = (err: unknown) => {
        log.error({ ...meta, command: o.command[0], err: scrubber.scrub(String(err)) }, "runner could not be started");
        const message = "Runner could not be started";
        end({ status: "error", message }, { message, code: RUNNER_ERROR_CODES.unavailable });
      };
      let proc: ChildProcess;
      try {
        proc = spawnProcessGroup(o.command, { env, cwd: turnDir, ...runAs });
      } catch (err) {
        return cannotStart(err);
      }
      child.proc = proc;
      live.pid = proc.pid;
      proc.on("error", (err) => {
        if (proc.pid === undefined) cannotStart(err);
        else log.warn({ ...meta, err: scrubber.scrub(String(err)) }, "runner process error");
      });
      if (proc.pid === undefined) return; // the 'error' event follows

      // stdin: the RunAgentInput, then EOF. A runner that never reads it may close the pipe early.
      proc.stdin?.on("error", (err) => log.debug({ ...meta, err: String(err) }, "runner stdin closed early"));
      proc.stdin?.end(JSON.stringify(ctx.input) + "\n");

      // stdout: complete lines → validated event → scrubbed → stream shape guard.
      const onLine = (line: string, truncated: boolean) => {
        try {
          handleLine(line, truncated);
        } catch (err) {
          // Never let runner output throw out of a stream callback: that would crash the gateway
          // and every other user's turn with it. This turn ends instead.
          log.error({ ...meta, err: scrubber.scrub(String(err)).slice(0, 200) }, "runner output could not be processed");
          end({ status: "error", message: "Runner output could not be processed" });
        }
      };
      const handleLine = (line: string, truncated: boolean) => {
        if (settled) return;
        if (truncated) {
          log.warn({ ...meta, maxBytes: o.maxLineBytes }, "dropped runner output line over the size limit");
          return;
        }
        const parsed = parseEventLine(line);
        if (parsed.kind === "skip") return;
        if (parsed.kind === "invalid") {
          log.warn({ ...meta, reason: scrubber.scrub(parsed.reason), line: scrubber.scrub(line).slice(0, 200) }, "dropped invalid runner output line");
          return;
        }
        if (stream.send(scrubber.scrubValue(parsed.event)) === "dropped") {
          log.debug({ ...meta, type: parsed.event.type }, "dropped out-of-order runner event");
          return;
        }
        const t = stream.terminal;
        if (!t) return;
        if (t.type === EventType.RUN_FINISHED) end({ status: "finished" });
        else end({ status: "error", message: String((t as { message?: unknown }).message ?? "Runner reported an error") });
      };
      const stdout = new LineSplitter(o.maxLineBytes, onLine);
      let stdoutEnded = false;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let drainTimer: ReturnType<typeof setTimeout> | undefined;
      // Backpressure: stop reading while the requester's stream is congested (the runner then
      // blocks on a full pipe), resume when it drained.
      let paused = false;
      proc.stdout?.on("data", (c: Buffer) => {
        stdout.push(c);
        const flow = ctx.flow;
        if (!flow || paused || settled || !flow.congested()) return;
        paused = true;
        proc.stdout?.pause();
        void flow.drained().then(() => {
          paused = false;
          if (!settled) proc.stdout?.resume();
        });
      });
      proc.stdout?.on("end", () => {
        stdoutEnded = true;
        stdout.end();
        if (exit) exited();
      });

      // stderr: scrubbed, bounded, at debug; the tail is repeated at warn if the runner dies.
      const tail: string[] = [];
      let stderrBytes = 0;
      const stderr = new LineSplitter(o.maxStderrLineBytes, (line, truncated) => {
        if (stderrBytes >= o.maxStderrBytes) return;
        stderrBytes += Buffer.byteLength(line);
        const text = truncated ? scrubber.scrubTruncated(line) : scrubber.scrub(line);
        if (stderrBytes >= o.maxStderrBytes) log.warn({ ...meta, maxBytes: o.maxStderrBytes }, "runner stderr over the limit; no longer logged");
        log.debug({ ...meta, stderr: text }, "runner stderr");
        tail.push(text);
        if (tail.length > STDERR_TAIL_LINES) tail.shift();
      });
      proc.stderr?.on("data", (c: Buffer) => stderr.push(c));
      proc.stderr?.on("end", () => stderr.end());

      // exit: give stdout a moment to drain (a grandchild may hold it open forever), then end.
      const exited = () => {
        if (!exit || settled) return;
        clearTimeout(drainTimer);
        stdout.end();
        const { code, signal } = exit;
        const how = code !== null ? `exited with code ${code}` : `was killed by ${signal}`;
        const message = `Runner ${how} before finishing the run`;
        log.warn({ ...meta, exitCode: code, signal, stderrTail: tail }, "runner exited without a terminal event");
        end({ status: "error", exitCode: code, message }, { message, code: RUNNER_ERROR_CODES.exited });
      };
      proc.on("exit", (code, signal) => {
        exit = { code, signal };
        if (stdoutEnded) exited();
        else drainTimer = setTimeout(exited, o.exitDrainMs);
      });
      cleanups.push(() => clearTimeout(drainTimer));
    });
  }
}
