/**
 * The shape guarantee of a turn's event stream (DESIGN §1 "turn / run", `TurnExecutor`):
 * it starts with RUN_STARTED and ends with exactly one RUN_FINISHED or RUN_ERROR, whatever the
 * runner sends. `RunStream` sits between the (validated, scrubbed) runner events and `emit`.
 */
import { EventType, type BaseEvent } from "@ag-ui/core";
import { isTerminalEvent } from "./events.ts";

/** What happened to an event handed to `RunStream.send`. */
export type SendResult = "sent" | "dropped";

/**
 * Enforces the stream shape:
 * - the first event is RUN_STARTED; one is synthesised from the turn's IDs when the runner
 *   starts with something else; a second RUN_STARTED is dropped;
 * - RUN_STARTED and RUN_FINISHED carry the turn's `threadId`/`runId` (a runner reporting other
 *   IDs would confuse clients that key on them);
 * - the first terminal event ends the stream; anything after it is dropped.
 * `emit` throwing (a consumer gone away) is reported to `onEmitError` and otherwise ignored.
 */
export class RunStream {
  #ids: { threadId: string; runId: string };
  #emit: (event: BaseEvent) => void;
  #onEmitError: (err: unknown) => void;
  #started = false;
  #terminal: BaseEvent | null = null;

  constructor(
    ids: { threadId: string; runId: string },
    emit: (event: BaseEvent) => void,
    onEmitError: (err: unknown) => void = () => {},
  ) {
    this.#ids = { threadId: ids.threadId, runId: ids.runId };
    this.#emit = emit;
    this.#onEmitError = onEmitError;
  }

  /** True once RUN_STARTED went out. */
  get started(): boolean {
    return this.#started;
  }

  /** True once the terminal event went out. */
  get ended(): boolean {
    return this.#terminal !== null;
  }

  /** The terminal event that went out, or null. */
  get terminal(): BaseEvent | null {
    return this.#terminal;
  }

  /** Forward one runner event (already validated and scrubbed). */
  send(event: BaseEvent): SendResult {
    if (this.#terminal) return "dropped";
    if (event.type === EventType.RUN_STARTED) {
      if (this.#started) return "dropped";
      this.#started = true;
      this.#out({ ...event, ...this.#ids } as BaseEvent);
      return "sent";
    }
    this.#ensureStarted();
    const out = event.type === EventType.RUN_FINISHED ? ({ ...event, ...this.#ids } as BaseEvent) : event;
    if (isTerminalEvent(event)) this.#terminal = out;
    this.#out(out);
    return "sent";
  }

  /**
   * End the stream with a synthesised RUN_ERROR, unless it has ended already.
   * @param message human text, must be free of secrets.
   * @param code stable machine code (`runner_exited`, `turn_timeout`, …).
   */
  fail(message: string, code: string): void {
    if (this.#terminal) return;
    this.#ensureStarted();
    const event = { type: EventType.RUN_ERROR, message, code, timestamp: Date.now() } as BaseEvent;
    this.#terminal = event;
    this.#out(event);
  }

  #ensureStarted(): void {
    if (this.#started) return;
    this.#started = true;
    this.#out({ type: EventType.RUN_STARTED, ...this.#ids, timestamp: Date.now() } as BaseEvent);
  }

  #out(event: BaseEvent): void {
    try {
      this.#emit(event);
    } catch (err) {
      this.#onEmitError(err);
    }
  }
}
