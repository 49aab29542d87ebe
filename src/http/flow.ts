/**
 * Backpressure from a requester's stream to its turn's runner (`TurnFlow`, src/runner/types.ts),
 * for any stream that can say how many bytes wait for its client: an SSE channel's queue
 * (`SseChannel.queuedBytes`) or a WebSocket's send buffer (Bun's `getBufferedAmount()`).
 *
 * Congested above `FLOW_HIGH_BYTES` waiting; drained once below `FLOW_LOW_BYTES` (polled every
 * 10 ms). A client that takes nothing for `stallMs` while output waits is cut: the turn is aborted
 * with `client_too_slow`. So a slow reader slows the runner down, a stalled one ends its turn,
 * and neither makes the gateway buffer without bound.
 */
import { TurnAbort, type TurnFlow } from "../runner/types.ts";
import { CLIENT_TOO_SLOW } from "./sse.ts";

/** Pause reading the runner above this many bytes waiting for the client (1 MiB). */
export const FLOW_HIGH_BYTES = 1024 * 1024;
/** Resume reading the runner once fewer than this many bytes wait (256 KiB). */
export const FLOW_LOW_BYTES = 256 * 1024;

/** What `streamFlow` reads from a stream. */
export interface FlowSource {
  /** Bytes waiting for the client now. */
  waitingBytes(): number;
  /** True once the stream is gone (then `drained()` returns at once). */
  closed(): boolean;
}

/**
 * A `TurnFlow` for one requester's stream (module doc).
 * @param abort the turn's controller: aborted with `TurnAbort("client_too_slow")` on a stall.
 * @param stallMs how long the client may take nothing while output waits, ms.
 */
export function streamFlow(source: FlowSource, abort: AbortController, stallMs: number): TurnFlow {
  return {
    congested: () => source.waitingBytes() > FLOW_HIGH_BYTES,
    async drained() {
      let last = source.waitingBytes();
      let lastProgress = Date.now();
      while (!source.closed() && !abort.signal.aborted && source.waitingBytes() > FLOW_LOW_BYTES) {
        await Bun.sleep(10);
        const q = source.waitingBytes();
        if (q < last) lastProgress = Date.now();
        last = q;
        if (Date.now() - lastProgress > stallMs) {
          abort.abort(new TurnAbort(CLIENT_TOO_SLOW, `Client read nothing for ${stallMs} ms while output was waiting`));
          return;
        }
      }
    },
  };
}
