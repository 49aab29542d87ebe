/**
 * The remote runner proxy (DESIGN §2.2, issue 3 scope 1, 5, 7): a turn is forwarded to a
 * long-lived HTTP runner Turnkey did not spawn (a sidecar, or the upstream platform's runner
 * service) and its SSE answer is passed through byte for byte (src/runner/sse-relay.ts).
 *
 * The runner learns who the sender is only from headers Turnkey builds itself
 * (src/runner/runner-request.ts); it gets the sender's credentials by presenting the turn token
 * to the credential endpoint, never the credentials themselves.
 */
import { credentialSecrets } from "../credentials/turn-environment.ts";
import { jsonTooDeep } from "../json.ts";
import type { RunRef, TurnContext, TurnEmit, TurnExecutor, TurnOutcome } from "./types.ts";
import { LiveTurns, runRef, type LiveTurn } from "./live-turns.ts";
import { SecretScrubber } from "./scrub.ts";
import { RUNNER_ERROR_CODES, type SupervisorLogger } from "./supervisor.ts";
import { DEFAULT_RETRY, MAX_RUNNER_EVENT_BYTES, PassThroughStream, relayTurn, type RetryPolicy, type StopReason } from "./sse-relay.ts";
import { expandRunnerUrl, readSessionToken, runnerEndpoint, runnerHeaders, type RunnerIdentity } from "./runner-request.ts";

/** Options of `RemoteRunnerProxy`. */
export interface RemoteRunnerOptions {
  /** Runner URL template with `{project}` and `{session}` (config `runnerUrl`, `TURNKEY_RUNNER_URL`). */
  urlTemplate: string;
  /** File holding the token sent as `X-Ambient-Session-Token`, read per request (config `runnerSessionTokenFile`). */
  sessionTokenFile?: string;
  /** Retry of refused connections; default `DEFAULT_RETRY` (500 ms ×1.5 ≤ 5 s, 50 s budget). */
  retry?: Partial<RetryPolicy>;
  /** Largest SSE event accepted, bytes; default `MAX_RUNNER_EVENT_BYTES` (4 MiB). */
  maxEventBytes?: number;
  /** Timeout of `GET /capabilities`, ms; default 3000. */
  capabilitiesTimeoutMs?: number;
  /** Timeout of `POST /interrupt`, ms; default 5000. */
  interruptTimeoutMs?: number;
  logger?: SupervisorLogger;
  /** For tests; default the global `fetch`. */
  fetch?: typeof fetch;
}

/** What `capabilities` answers when the runner cannot say (issue 3 scope 7). */
export const UNKNOWN_CAPABILITIES: Readonly<Record<string, unknown>> = Object.freeze({
  framework: "unknown",
  agent_features: [],
  platform_features: [],
  file_system: false,
  mcp: false,
});

/** A fresh, mutable copy of `UNKNOWN_CAPABILITIES`, what executors answer when they cannot ask. */
export function unknownCapabilities(): Record<string, unknown> {
  return structuredClone(UNKNOWN_CAPABILITIES) as Record<string, unknown>;
}

const SHUTDOWN: StopReason = { message: "Gateway is shutting down", code: RUNNER_ERROR_CODES.shutdown, status: "aborted" };
const noop = () => {};
const silent: SupervisorLogger = { debug: noop, info: noop, warn: noop, error: noop };

interface RemoteTurn extends LiveTurn {
  threadId: string;
  /** Set once the turn starts (expanding the template cannot fail after the constructor's check, but stays inside the turn's try). */
  url?: string;
  identity: RunnerIdentity;
}

/**
 * Every secret value of a turn, for the scrubber: the same list the local supervisor scrubs
 * (the credential values, `credentialSecrets`, and the turn token).
 */
export function turnSecrets(ctx: TurnContext): string[] {
  return [...credentialSecrets(ctx.credentials), ctx.turnToken].filter((v) => v !== "");
}

/** Largest capabilities document accepted from a runner, characters. */
const MAX_CAPABILITIES_CHARS = 64 * 1024;

/**
 * Forwards each turn to a remote AG-UI runner over HTTP.
 * @example
 * const proxy = new RemoteRunnerProxy({ urlTemplate: "http://session-{session}.{project}.svc:8001/" });
 * const outcome = await proxy.execute(ctx, (event, raw) => (raw ? sse.sendRaw(raw) : sse.send(event)));
 */
export class RemoteRunnerProxy implements TurnExecutor {
  #template: string;
  #tokenFile: string | undefined;
  #retry: RetryPolicy;
  #maxEventBytes: number;
  #capsTimeoutMs: number;
  #interruptTimeoutMs: number;
  #log: SupervisorLogger;
  #fetch: typeof fetch;
  #turns = new LiveTurns<RemoteTurn>();

  /** @throws ConfigError when the template does not give an http(s) URL. */
  constructor(opts: RemoteRunnerOptions) {
    expandRunnerUrl(opts.urlTemplate, "project", "session");
    this.#template = opts.urlTemplate;
    this.#tokenFile = opts.sessionTokenFile;
    this.#retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.#maxEventBytes = opts.maxEventBytes ?? MAX_RUNNER_EVENT_BYTES;
    this.#capsTimeoutMs = opts.capabilitiesTimeoutMs ?? 3000;
    this.#interruptTimeoutMs = opts.interruptTimeoutMs ?? 5000;
    this.#log = opts.logger ?? silent;
    this.#fetch = opts.fetch ?? fetch;
  }

  /** Number of turns currently being relayed. */
  get liveTurns(): number {
    return this.#turns.size;
  }

  /** See `TurnExecutor.execute`. Never rejects. */
  execute(ctx: TurnContext, emit: TurnEmit): Promise<TurnOutcome> {
    const live: RemoteTurn = {
      ...runRef(ctx),
      threadId: ctx.threadId,
      identity: { userId: ctx.userId, userName: ctx.userName, turnToken: ctx.turnToken },
      stop: new AbortController(),
    };
    return this.#turns.track(live, (t) => this.#execute(ctx, emit, t));
  }

  async #execute(ctx: TurnContext, emit: TurnEmit, live: RemoteTurn): Promise<TurnOutcome> {
    const meta = { project: ctx.project, session: ctx.session, runId: ctx.runId };
    const log = this.#log;
    const stream = new PassThroughStream(ctx, emit, (err) => log.debug({ ...meta, err: String(err) }, "event consumer failed"));
    let scrubber = new SecretScrubber([ctx.turnToken]);
    let outcome: TurnOutcome;
    try {
      if (this.#turns.closed) {
        stream.fail(SHUTDOWN.message, SHUTDOWN.code);
        return { status: "aborted", message: SHUTDOWN.message };
      }
      live.url = expandRunnerUrl(this.#template, ctx.project, ctx.session);
      const sessionToken = await readSessionToken(this.#tokenFile, log);
      scrubber = new SecretScrubber([...turnSecrets(ctx), sessionToken]);
      const headers = runnerHeaders(live.identity, sessionToken, {
        "Content-Type": "application/json",
        Accept: "text/event-stream",
        // Compression would make a proxy in front of the runner buffer the stream.
        "Accept-Encoding": "identity",
      });
      outcome = await relayTurn(ctx, {
        url: live.url,
        headers,
        scrubber,
        stream,
        retry: this.#retry,
        stop: live.stop.signal,
        maxEventBytes: this.#maxEventBytes,
        logger: log,
        fetch: this.#fetch,
      });
    } catch (err) {
      log.error({ ...meta, err: scrubber.scrub(String(err)) }, "remote turn setup failed");
      const message = "Turn could not be started";
      stream.fail(message, RUNNER_ERROR_CODES.setup);
      outcome = { status: "error", message };
    }
    log.info({ ...meta, status: outcome.status }, "remote turn ended");
    return outcome;
  }

  /**
   * `POST <runner base>/interrupt` with the live turn's identity headers and body
   * `{"thread_id", "run_id"}` (the upstream runner reads `thread_id`). The runner decides how
   * to wind down; the turn still ends with a terminal event (or the deadline).
   * @returns true if the live turn of `ref` got a 2xx answer; false otherwise (never rejects).
   */
  async interrupt(ref: RunRef): Promise<boolean> {
    const runId = ref.runId;
    const turns = this.#turns.forRun(ref).filter((t) => t.url);
    const results = await Promise.all(
      turns.map(async (t) => {
        if (!t.url) return false;
        try {
          const sessionToken = await readSessionToken(this.#tokenFile, this.#log);
          const res = await this.#fetch(runnerEndpoint(t.url, "interrupt"), {
            method: "POST",
            headers: runnerHeaders(t.identity, sessionToken, { "Content-Type": "application/json", Accept: "application/json" }),
            body: JSON.stringify({ thread_id: t.threadId, run_id: t.runId }),
            redirect: "manual",
            signal: AbortSignal.timeout(this.#interruptTimeoutMs),
          });
          void res.body?.cancel().catch(() => {});
          if (!res.ok) this.#log.warn({ runId, status: res.status }, "runner refused the interrupt");
          return res.ok;
        } catch (err) {
          this.#log.warn({ runId, err: (err as Error).name }, "could not interrupt the remote runner");
          return false;
        }
      }),
    );
    return results.some(Boolean);
  }

  /**
   * The runner's `GET <runner base>/capabilities` JSON object, or `UNKNOWN_CAPABILITIES` on any
   * error (unreachable, non-2xx, not a JSON object, over 64 Ki characters or nested deeper than
   * `MAX_JSON_DEPTH`, slower than `capabilitiesTimeoutMs`).
   * Sends no user identity (there is no turn), only `X-Ambient-Session-Token` when configured.
   */
  async capabilities(where: { project: string; session: string }): Promise<Record<string, unknown>> {
    try {
      const url = runnerEndpoint(expandRunnerUrl(this.#template, where.project, where.session), "capabilities");
      const sessionToken = await readSessionToken(this.#tokenFile, this.#log);
      const headers: Record<string, string> = { Accept: "application/json" };
      if (sessionToken) headers["X-Ambient-Session-Token"] = sessionToken;
      const res = await this.#fetch(url, { headers, redirect: "manual", signal: AbortSignal.timeout(this.#capsTimeoutMs) });
      if (!res.ok) {
        void res.body?.cancel().catch(() => {});
        throw new Error(`HTTP ${res.status}`);
      }
      const text = await res.text();
      if (text.length > MAX_CAPABILITIES_CHARS) throw new Error("capabilities too large");
      if (jsonTooDeep(text)) throw new Error("capabilities nested too deeply");
      const body: unknown = JSON.parse(text);
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error("not a JSON object");
      return body as Record<string, unknown>;
    } catch (err) {
      this.#log.debug({ ...where, err: err instanceof Error ? err.message : String(err) }, "runner capabilities unavailable");
      return unknownCapabilities();
    }
  }

  /** End every live turn with RUN_ERROR `gateway_shutdown` (upstream requests aborted); new turns are refused. */
  async shutdown(): Promise<void> {
    await this.#turns.shutdown(SHUTDOWN);
  }
}
