/**
 * Server-Sent Events framing for AG-UI streams (WHATWG HTML §9.2): each event is
 * `data: <json>\n\n` (framed by @ag-ui/encoder), and `: heartbeat\n\n` comment lines keep
 * proxies and the client from cutting a quiet stream.
 */
import type { BaseEvent } from "@ag-ui/core";
import { EventEncoder } from "@ag-ui/encoder";

const textEncoder = new TextEncoder();
const HEARTBEAT = textEncoder.encode(": heartbeat\n\n");

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
}

/**
 * Create an SSE channel.
 * @param opts.heartbeatMs send `: heartbeat` when nothing was sent for this long (ms).
 * @param opts.onCancel called once when the client goes away (the body stream is cancelled).
 */
export function createSseChannel(opts: { heartbeatMs: number; onCancel?: () => void }): SseChannel {
  const encoder = new EventEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let lastSent = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - lastSent >= opts.heartbeatMs) write(HEARTBEAT);
  }, Math.max(50, Math.min(opts.heartbeatMs, 1000)));

  const stop = () => {
    if (closed) return;
    closed = true;
    clearInterval(timer);
  };
  const write = (bytes: Uint8Array) => {
    if (closed) return;
    try {
      controller.enqueue(bytes);
      lastSent = Date.now();
    } catch {
      stop();
    }
  };
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      stop();
      opts.onCancel?.();
    },
  });
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
  };
}
