/**
 * In-memory fan-out of AG-UI events per session, so every participant watching a session sees
 * every turn live (issue 3 §4). Events are numbered per session and, when a log is attached,
 * stored first so a late watcher can replay them. Publishers hand in events already scrubbed of
 * the turn's secrets.
 */
import type { BaseEvent } from "@ag-ui/core";
import type { SessionEventLog } from "./event-log.ts";

/** `seq` is the per-session sequence number (SSE `id:`), `runId` the turn the event belongs to. */
export type SessionEventListener = (event: BaseEvent, meta: { runId: string; seq: number }) => void;

export class SessionEventBus {
  #listeners = new Map<string, Set<SessionEventListener>>();
  #log: SessionEventLog | undefined;
  #seq = new Map<string, number>();
  #onError: (err: unknown) => void;

  /** @param log optional persistent log; @param onError called when the log cannot be written. */
  constructor(log?: SessionEventLog, onError: (err: unknown) => void = () => {}) {
    this.#log = log;
    this.#onError = onError;
  }

  /** The attached log, for replay. */
  get log(): SessionEventLog | undefined {
    return this.#log;
  }

  /** Subscribe to a session's events; returns the unsubscribe function. */
  subscribe(project: string, session: string, listener: SessionEventListener): () => void {
    const key = `${project}/${session}`;
    let set = this.#listeners.get(key);
    if (!set) this.#listeners.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(key);
    };
  }

  /**
   * Store (when a log is attached) and deliver to every subscriber of the session. A failing log
   * write is reported and the event is still delivered live; a throwing listener is dropped.
   */
  publish(project: string, session: string, runId: string, event: BaseEvent): void {
    const key = `${project}/${session}`;
    let seq: number;
    try {
      seq = this.#log ? this.#log.append(project, session, runId, event) : (this.#seq.get(key) ?? 0) + 1;
    } catch (err) {
      this.#onError(err);
      seq = (this.#seq.get(key) ?? 0) + 1;
    }
    this.#seq.set(key, seq);
    const set = this.#listeners.get(key);
    if (!set) return;
    for (const l of [...set]) {
      try {
        l(event, { runId, seq });
      } catch {
        set.delete(l);
      }
    }
  }
}
