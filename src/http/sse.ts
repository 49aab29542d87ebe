/**
 * Server-Sent Events framing for AG-UI streams (WHATWG HTML §9.2): each event is
 * `data: <json>\n\n` (framed by @ag-ui/encoder), and `: heartbeat\n\n` comment lines keep
 * proxies and the client from cutting a quiet stream.
 *
 * Bounded buffering (issue 3): `send` is synchronous and never waits for the client, so a client
 * that stops reading makes the channel's queue grow. For a turn's own stream the route applies
 * backpressure first (`streamFlow` in src/http/flow.ts pauses the runner above 1 MiB queued and cuts a
 * client that reads nothing for `TURNKEY_CLIENT_STALL_MS`); this cap is the backstop, and the only
 * bound for watchers' streams. The queue is measured in bytes; once more
 * than `maxQueuedBytes` would be queued, the channel drops that chunk, queues one final
 * `RUN_ERROR` (`code: "client_too_slow"`), closes, and calls `onOverflow` (default `onCancel`),
 * which aborts the turn and so the runner (teardown as on a disconnect). A client that resumes
 * reading gets everything queued so far, then that RUN_ERROR, then the end of the stream.
 * Memory per stream is thus about `maxQueuedBytes` plus what Bun and the kernel hold for the
 * socket (a few MiB, measured under Bun 1.4) plus one chunk.
 */
import { EventType, type BaseEvent } from "@ag-ui/core";
import { EventEncoder } from "@ag-ui/encoder";

const textEncoder = new TextEncoder();
const HEARTBEAT = textEncoder.encode(": heartbeat\n\n");

/** Default per-stream queue cap, bytes (8 MiB). */
export const DEFAULT_SSE_MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** RUN_ERROR code sent when a client reads too slowly (see the module doc). */
export const CLIENT_TOO_SLOW = "client_too_slow";

/** Headers for an SSE response; `X-Accel-Buffering: no` stops nginx-style proxies buffering it. */
export const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  Connection: "keep-alive",
  "X-Accel-Buffering": "no",
} as const;

/** A writable SSE channel backed by a ReadableStream the response body reads from. */
export interface SseChannel {
  readonly stream: ReadableStream<Uint8Array>;
  /** Send one AG-UI event. No-op once closed. */
  send(event: BaseEvent): void;
  /** Send raw, already-framed SSE bytes (proxy pass-through). No-op once closed. */
  sendRaw(chunk: Uint8Array): void;
  /** End the stream. Idempotent. */
  close(): void;
  readonly closed: boolean;
  /** Bytes enqueued and not yet taken by the response body. */
  readonly queuedBytes: number;
}

/** Options of `createSseChannel`. */
export interface SseChannelOptions {
  /** Send `: heartbeat` when nothing was sent for this long (ms); skipped while bytes are still queued. */
  heartbeatMs: number;
  /** Called once when the client goes away (the body stream is cancelled). */
  onCancel?: () => void;
  /** Queue cap in bytes; default `DEFAULT_SSE_MAX_QUEUED_BYTES`. A chunk into an empty queue is always accepted. */
  maxQueuedBytes?: number;
  /** Called once when the cap is hit (after the final RUN_ERROR is queued); default `onCancel`. */
  onOverflow?: () => void;
}

/** Create an SSE channel (see the module doc for the buffering cap). */
export function createSseChannel(opts: SseChannelOptions): SseChannel {
  const maxQueued = opts.maxQueuedBytes ?? DEFAULT_SSE_MAX_QUEUED_BYTES;
  const encoder = new EventEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let lastSent = Date.now();
  // Queue size in bytes: with highWaterMark 0 and a byte-length size, desiredSize = -queued.
  const queued = () => Math.max(0, -(controller.desiredSize ?? 0));
  const timer = setInterval(() => {
    if (Date.now() - lastSent >= opts.heartbeatMs && queued() === 0) write(HEARTBEAT);
  }, Math.max(50, Math.min(opts.heartbeatMs, 1000)));

  const stop = () => {
    if (closed) return;
    closed = true;
    clearInterval(timer);
  };
  const overflow = () => {
    const event = { type: EventType.RUN_ERROR, message: `Client too slow: more than ${maxQueued} bytes waiting to be read`, code: CLIENT_TOO_SLOW, timestamp: Date.now() };
    try {
      controller.enqueue(textEncoder.encode(encoder.encodeSSE(event as BaseEvent)));
      controller.close();
    } catch {
      /* cancelled meanwhile */
    }
    stop();
    (opts.onOverflow ?? opts.onCancel)?.();
  };
  const write = (bytes: Uint8Array) => {
    if (closed) return;
    const q = queued();
    if (q > 0 && q + bytes.byteLength > maxQueued) return overflow();
    try {
      controller.enqueue(bytes);
      lastSent = Date.now();
    } catch {
      stop();
    }
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      cancel() {
        stop();
        opts.onCancel?.();
      },
    },
    { highWaterMark: 0, size: (chunk) => chunk?.byteLength ?? 0 },
  );
  return {
    stream,
    send: (event) => write(textEncoder.encode(encoder.encodeSSE(event))),
    sendRaw: write,
    close() {
      if (closed) return;
      stop();
      try {
        controller.close();
      } catch {
        /* already closed by the consumer */
      }
    },
    get closed() {
      return closed;
    },
    get queuedBytes() {
      return queued();
    },
  };
}
