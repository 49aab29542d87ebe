/**
 * The streaming core shared by the remote runner proxy and the spawned HTTP runner (DESIGN
 * §2.2, issue 3 scope 1-2): POST the RunAgentInput to a runner, read its SSE answer event by
 * event, validate and scrub each event, and hand it on with the exact bytes the runner sent
 * when scrubbing changed nothing and the block has no bare CR line break (re-encoded otherwise).
 *
 * Flow control: the body is read one chunk at a time and every complete event is handed to
 * `emit` synchronously before the next read, so the gateway holds at most one chunk plus one
 * incomplete event (≤ `maxEventBytes`) per turn. While the requester's stream is congested
 * (`ctx.flow`, see `TurnFlow`) the next read waits, so the runner is slowed to the client's pace;
 * the wait ends when the stream drains or the relay stops (runner exit, deadline, abort). The SSE
 * channel's hard cap (src/http/sse.ts) stays as a backstop.
 *
 * Upstream comment-only blocks (`: ping`) are dropped: the gateway's SSE channel sends its own
 * `: heartbeat` while the stream is quiet. Comment lines inside an event block stay in its raw
 * bytes.
 */
import { EventType, type BaseEvent } from "@ag-ui/core";
import { waitUntil } from "./wait.ts";
import { TurnAbort, type TurnContext, type TurnEmit, type TurnFlow, type TurnOutcome } from "./types.ts";
import { parseEventLine } from "./events.ts";
import { RunStream } from "./run-stream.ts";
import type { SecretScrubber } from "./scrub.ts";
import { SseBlockParser, type SseBlock } from "./sse-parser.ts";
import { RUNNER_ERROR_CODES, type SupervisorLogger } from "./supervisor.ts";

/** Connection retry while a runner is not up yet (issue 3: 500 ms, ×1.5, capped at 5 s, ~50 s in all). */
export interface RetryPolicy {
  /** First wait, ms. */
  initialMs: number;
  /** Multiplier per attempt. */
  factor: number;
  /** Longest single wait, ms. */
  maxMs: number;
  /** Total time after the first attempt during which refused connections are retried, ms. */
  budgetMs: number;
}

/** The issue 3 schedule: 500 ms, ×1.5, capped at 5 s, for 50 s. */
export const DEFAULT_RETRY: RetryPolicy = { initialMs: 500, factor: 1.5, maxMs: 5000, budgetMs: 50_000 };

/** Largest SSE event block accepted from a runner, bytes (4 MiB); bigger ones are dropped with a warning. */
export const MAX_RUNNER_EVENT_BYTES = 4 * 1024 * 1024;

/** RUN_ERROR codes of HTTP runners, besides `RUNNER_ERROR_CODES`. */
export const HTTP_RUNNER_ERROR_CODES = {
  /** Connection refused for the whole retry budget, or another failure before any response. */
  unavailable: RUNNER_ERROR_CODES.unavailable,
  /** The runner answered with a non-2xx status. */
  http: "runner_http_error",
  /** The runner's stream ended or broke before a terminal event. */
  ended: "runner_stream_ended",
} as const;

/** Why a caller stopped a relayed turn; becomes the RUN_ERROR and the outcome. */
export interface StopReason {
  message: string;
  code: string;
  status: TurnOutcome["status"];
}

/** True iff `v` is a `StopReason`. */
export function isStopReason(v: unknown): v is StopReason {
  return typeof v === "object" && v !== null && typeof (v as StopReason).message === "string" && typeof (v as StopReason).code === "string";
}

/**
 * `RunStream` plus raw pass-through: `send(event, raw)` forwards `raw` only if `RunStream`
 * passed the event on unchanged (it rewrites RUN_STARTED/RUN_FINISHED IDs that differ from
 * the turn's, and synthesises RUN_STARTED); otherwise the event is re-encoded by the consumer.
 */
export class PassThroughStream {
  readonly #stream: RunStream;
  #pending: { event: BaseEvent; raw: Uint8Array } | null = null;

  constructor(ids: { threadId: string; runId: string }, emit: TurnEmit, onEmitError: (err: unknown) => void = () => {}) {
    this.#stream = new RunStream(
      ids,
      (out) => {
        const p = this.#pending;
        if (p && sameEvent(out, p.event)) emit(out, p.raw);
        else emit(out);
      },
      onEmitError,
    );
  }

  get started(): boolean {
    return this.#stream.started;
  }
  get ended(): boolean {
    return this.#stream.ended;
  }
  get terminal(): BaseEvent | null {
    return this.#stream.terminal;
  }

  /** Forward a validated, scrubbed event; `raw` = its exact SSE bytes, already checked secret-free. */
  send(event: BaseEvent, raw?: Uint8Array): "sent" | "dropped" {
    this.#pending = raw ? { event, raw } : null;
    try {
      return this.#stream.send(event);
    } finally {
      this.#pending = null;
    }
  }

  /** See `RunStream.fail`. */
  fail(message: string, code: string): void {
    this.#stream.fail(message, code);
  }
}

/** `out` is `event` as RunStream passes it on, unchanged (same object, or same IDs re-spread). */
function sameEvent(out: BaseEvent, event: BaseEvent): boolean {
  if (out === event) return true;
  const a = out as BaseEvent & { threadId?: unknown; runId?: unknown };
  const b = event as BaseEvent & { threadId?: unknown; runId?: unknown };
  return a.type === b.type && a.threadId === b.threadId && a.runId === b.runId && Object.keys(a).length === Object.keys(b).length;
}

/** Options of `relayTurn`. */
export interface RelayOptions {
  /** Where the RunAgentInput is POSTed. */
  url: string;
  /** The complete request header set (`runnerHeaders`); nothing else is added but Bun's defaults. */
  headers: Record<string, string>;
  scrubber: SecretScrubber;
  stream: PassThroughStream;
  /** Retry policy for refused connections; null = one attempt. */
  retry: RetryPolicy | null;
  /** Aborted by the caller with a `StopReason` (gateway shutdown, runner process exit). */
  stop?: AbortSignal;
  /** See `MAX_RUNNER_EVENT_BYTES`. */
  maxEventBytes: number;
  logger: SupervisorLogger;
  /** For tests; default the global `fetch`. */
  fetch?: typeof fetch;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** Errors meaning nothing reached a runner yet, so retrying the POST cannot run a turn twice. */
const RETRYABLE_CODES = new Set(["ECONNREFUSED", "ConnectionRefused", "ENOTFOUND", "EAI_AGAIN", "FailedToOpenSocket"]);
const decoder = new TextDecoder("utf-8");

/** True for connection errors that happen before any byte reaches the runner. */
export function isRetryableConnectError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && RETRYABLE_CODES.has(code);
}

/**
 * POST `ctx.input` to `opts.url` and relay the runner's SSE events through `opts.stream` until
 * a terminal event, the end of the stream, `ctx.signal` (aborted), the turn deadline (timeout)
 * or `opts.stop` (its reason). Any of these aborts the upstream request, so the runner sees its
 * connection close. Every path ends the stream with exactly one terminal event. Never rejects.
 *
 * Failures: refused for the whole retry budget or another connection error → RUN_ERROR
 * "Runner is not available" (`runner_unavailable`); non-2xx → "Runner error: HTTP <code>"
 * (`runner_http_error`); stream ended or broke early → `runner_stream_ended`.
 * Redirects are not followed (a 3xx is a runner error): following one would send the turn
 * token to wherever the runner points.
 */
export async function relayTurn(ctx: TurnContext, opts: RelayOptions): Promise<TurnOutcome> {
  const meta = { project: ctx.project, session: ctx.session, runId: ctx.runId };
  const log = opts.logger;
  const stream = opts.stream;
  const controller = new AbortController();
  let stopped: StopReason | undefined;
  const stop = (r: StopReason) => {
    stopped ??= r;
    controller.abort();
  };
  const cleanups: (() => void)[] = [];
  const listen = (signal: AbortSignal, reason: (s: AbortSignal) => StopReason) => {
    const h = () => stop(reason(signal));
    if (signal.aborted) return h();
    signal.addEventListener("abort", h, { once: true });
    cleanups.push(() => signal.removeEventListener("abort", h));
  };
  listen(ctx.signal, (s) =>
    s.reason instanceof TurnAbort ? { message: s.reason.message, code: s.reason.code, status: "aborted" } : { message: "Turn aborted", code: RUNNER_ERROR_CODES.aborted, status: "aborted" },
  );
  if (opts.stop) listen(opts.stop, (s) => (isStopReason(s.reason) ? s.reason : { message: "Turn aborted", code: RUNNER_ERROR_CODES.aborted, status: "aborted" }));
  const timeout: StopReason = { message: "Turn exceeded its time limit", code: RUNNER_ERROR_CODES.timeout, status: "timeout" };
  const remainingMs = ctx.deadline - Date.now();
  if (remainingMs <= 0) stop(timeout);
  const timer = setTimeout(() => stop(timeout), Math.min(Math.max(0, remainingMs), MAX_TIMER_MS));
  cleanups.push(() => clearTimeout(timer));

  const finish = (outcome: TurnOutcome, error?: { message: string; code: string }): TurnOutcome => {
    if (error) stream.fail(error.message, error.code);
    return outcome;
  };
  const endStopped = (r: StopReason) => finish({ status: r.status, message: r.message }, r);
  try {
    const res = await connect(ctx, opts, controller.signal, () => stopped !== undefined);
    if (stopped) {
      if (res.kind === "response") void res.response.body?.cancel().catch(() => {});
      return endStopped(stopped);
    }
    if (res.kind === "unavailable") {
      log.warn({ ...meta, url: opts.url, attempts: res.attempts, err: opts.scrubber.scrub(res.error) }, "runner not available");
      const message = "Runner is not available";
      return finish({ status: "error", message }, { message, code: HTTP_RUNNER_ERROR_CODES.unavailable });
    }
    const response = res.response;
    if (!response.ok) {
      void response.body?.cancel().catch(() => {});
      log.warn({ ...meta, url: opts.url, status: response.status }, "runner answered with an error status");
      const message = `Runner error: HTTP ${response.status}`;
      return finish({ status: "error", message }, { message, code: HTTP_RUNNER_ERROR_CODES.http });
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.includes("text/event-stream")) log.warn({ ...meta, contentType: type.slice(0, 100) }, "runner response is not text/event-stream; parsing it as SSE anyway");
    const ended = await pump(response, opts, stream, meta, ctx.flow, controller.signal);
    if (stream.terminal) {
      const t = stream.terminal;
      if (t.type === EventType.RUN_FINISHED) return { status: "finished" };
      return { status: "error", message: String((t as { message?: unknown }).message ?? "Runner reported an error") };
    }
    if (stopped) return endStopped(stopped);
    log.warn({ ...meta, reason: ended }, "runner stream ended without a terminal event");
    const message = ended === "eof" ? "Runner closed the stream before finishing the run" : "Runner connection failed before the run finished";
    return finish({ status: "error", message }, { message, code: HTTP_RUNNER_ERROR_CODES.ended });
  } catch (err) {
    // Not expected (every await above handles its own errors); keep the contract anyway.
    log.error({ ...meta, err: opts.scrubber.scrub(String(err)) }, "runner relay failed");
    const message = "Runner connection failed before the run finished";
    return finish({ status: "error", message }, { message, code: HTTP_RUNNER_ERROR_CODES.ended });
  } finally {
    for (const c of cleanups) c();
    // Closes the upstream connection if it is still open (terminal event seen, or any early end).
    controller.abort();
  }
}

type Connected = { kind: "response"; response: Response } | { kind: "unavailable"; attempts: number; error: string };

/** POST with retries on refused connections; resolves `unavailable` also when stopped meanwhile. */
async function connect(ctx: TurnContext, opts: RelayOptions, signal: AbortSignal, isStopped: () => boolean): Promise<Connected> {
  const doFetch = opts.fetch ?? fetch;
  const body = JSON.stringify(ctx.input);
  const first = Date.now();
  let delay = opts.retry?.initialMs ?? 0;
  for (let attempt = 1; ; attempt++) {
    try {
      const init = { method: "POST", headers: opts.headers, body, signal, redirect: "manual", timeout: false } as RequestInit & { timeout: false };
      return { kind: "response", response: await doFetch(opts.url, init) };
    } catch (err) {
      const error = `${(err as { code?: string }).code ?? ""} ${String(err)}`.trim();
      if (isStopped() || !opts.retry || !isRetryableConnectError(err)) return { kind: "unavailable", attempts: attempt, error };
      const left = first + opts.retry.budgetMs - Date.now();
      if (left <= 0) return { kind: "unavailable", attempts: attempt, error };
      opts.logger.debug({ runId: ctx.runId, attempt, retryInMs: Math.min(delay, left) }, "runner refused the connection; retrying");
      await waitUntil(Math.min(delay, left), [signal]);
      if (isStopped()) return { kind: "unavailable", attempts: attempt, error };
      delay = Math.min(opts.retry.maxMs, delay * opts.retry.factor);
    }
  }
}

/** Read the body to its end (or a terminal event, or an abort). @returns how reading ended. */
async function pump(response: Response, opts: RelayOptions, stream: PassThroughStream, meta: object, flow: TurnFlow | undefined, stopped: AbortSignal): Promise<"eof" | "error" | "terminal"> {
  // Waiting for the client must also end when the relay stops (runner exit, deadline, abort).
  const whenStopped = waitUntil(Infinity, [stopped]); // one listener per pump, however often it pauses
  const log = opts.logger;
  const scrubber = opts.scrubber;
  const onBlock = (block: SseBlock) => {
    if (stream.ended || block.data === null) return; // comment-only blocks: see the module doc
    const parsed = parseEventLine(block.data);
    if (parsed.kind === "skip") return;
    if (parsed.kind === "invalid") {
      log.warn({ ...meta, reason: scrubber.scrub(parsed.reason), data: scrubber.scrub(block.data).slice(0, 200) }, "dropped invalid runner event");
      return;
    }
    const event = parsed.event;
    // Raw bytes only when neither they (comments, other fields, escapes as sent) nor the decoded
    // JSON as sent (a secret spelt with \u escapes, also in members the schema drops, such as
    // `__proto__`) contain a secret form, and when they hold no lone CR: SSE (and this relay)
    // ends a line at a bare CR, @ag-ui/client does not, so the sender would read other events
    // than the watchers (both found by a break-it review).
    const rawText = decoder.decode(block.raw);
    const json = JSON.stringify(parsed.value);
    const loneCr = /\r(?!\n)/.test(rawText);
    const clean = !loneCr && (scrubber.size === 0 || (scrubber.scrub(rawText) === rawText && scrubber.scrub(json) === json));
    const result = clean ? stream.send(event, block.raw) : stream.send(scrubber.scrubValue(event));
    if (result === "dropped") log.debug({ ...meta, type: event.type }, "dropped out-of-order runner event");
  };
  const parser = new SseBlockParser({
    maxBlockBytes: opts.maxEventBytes,
    onBlock,
    onOversized: (bytes) => log.warn({ ...meta, bytes, maxBytes: opts.maxEventBytes }, "dropped runner event over the size limit"),
  });
  if (!response.body) return "eof";
  const reader = response.body.getReader();
  try {
    for (;;) {
      // Backpressure: read the runner only as fast as the requester takes the events.
      if (flow?.congested()) await Promise.race([flow.drained(), whenStopped]);
      if (stopped.aborted) return "error";
      const { done, value } = await reader.read();
      if (done) {
        const discarded = parser.end();
        if (discarded > 0) log.warn({ ...meta, bytes: discarded }, "runner stream ended inside an event; discarded");
        return "eof";
      }
      parser.push(value);
      if (stream.ended) return "terminal";
    }
  } catch (err) {
    log.debug({ ...meta, err: scrubber.scrub(String(err)) }, "runner stream read failed");
    return "error";
  } finally {
    void reader.cancel().catch(() => {});
  }
}

