/**
 * In-memory fan-out of AG-UI events per session, so every participant watching a session sees
 * every turn live. Subscribers receive events already scrubbed of the turn's secrets.
 */
import type { BaseEvent } from "@ag-ui/core";

export type SessionEventListener = (event: BaseEvent, meta: { runId: string }) => void;

export class SessionEventBus {
  #listeners = new Map<string, Set<SessionEventListener>>();

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

  /** Publish to every subscriber of the session; a throwing listener is dropped, not fatal. */
  publish(project: string, session: string, runId: string, event: BaseEvent): void {
    const set = this.#listeners.get(`${project}/${session}`);
    if (!set) return;
    for (const l of [...set]) {
      try {
        l(event, { runId });
      } catch {
        set.delete(l);
      }
    }
  }
}
