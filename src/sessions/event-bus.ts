/**
 * In-memory fan-out of AG-UI events per session, so every participant watching a session sees
 * every turn live (issue 3 §4). Events are numbered per session and, when a log is attached,
 * stored first so a late watcher can replay them. Publishers hand in events already scrubbed of
 * the turn's secrets.
 *
 * Membership notifications travel on a separate, internal channel (`membershipChanged` /
 * `onMembershipChange`): they are not AG-UI events, are never numbered, stored in the log or
 * delivered to event listeners, so no client ever receives one. The live-view routes use them
 * to re-check their watchers at once when a session's collaborators change through this gateway.
 */
import type { BaseEvent } from "@ag-ui/core";
import type { SessionEventLog } from "./event-log.ts";

/** `seq` is the per-session sequence number (SSE `id:`), `runId` the turn the event belongs to. */
export type SessionEventListener = (event: BaseEvent, meta: { runId: string; seq: number }) => void;

/** Called when a session's membership changed; carries nothing, listeners re-check themselves. */
export type MembershipListener = () => void;

/** Add `listener` to the set under `key`; the returned function removes it (and an emptied set). */
function addTo<L>(map: Map<string, Set<L>>, key: string, listener: L): () => void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
    if (set.size === 0 && map.get(key) === set) map.delete(key);
  };
}

/** Per-session fan-out of AG-UI events, optionally stored in a log, plus the internal membership channel (see the module doc). */
export class SessionEventBus {
  #listeners = new Map<string, Set<SessionEventListener>>();
  #membership = new Map<string, Set<MembershipListener>>();
  #membershipVersion = new Map<string, number>();
  #log: SessionEventLog | undefined;
  #seq = new Map<string, number>();
  #incarnation = new Map<string, string>();
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

  /**
   * Sequence number of the session's newest event (0 = none): the larger of what this process
   * published and what the log holds. A log read error counts as nothing stored.
   */
  currentSeq(project: string, session: string): number {
    let stored = 0;
    try {
      stored = this.#log?.lastSeq(project, session) ?? 0;
    } catch (err) {
      this.#onError(err);
    }
    return Math.max(stored, this.#seq.get(`${project}/${session}`) ?? 0);
  }

  /**
   * Tie the session's stored events to this incarnation of the session (see
   * `SessionEventLog.bindIncarnation`); when the incarnation changed, this process's sequence
   * counter restarts too. A log error is reported and counts as nothing discarded.
   * @returns true when an earlier incarnation's events were discarded.
   */
  bindIncarnation(project: string, session: string, id: string): boolean {
    let discarded = false;
    try {
      discarded = this.#log?.bindIncarnation(project, session, id) ?? false;
    } catch (err) {
      this.#onError(err);
    }
    const key = `${project}/${session}`;
    if (this.#incarnation.get(key) !== id) {
      if (this.#incarnation.has(key)) this.#seq.delete(key);
      this.#incarnation.set(key, id);
    }
    return discarded;
  }

  /** Number of event subscribers of a session (for tests and diagnostics). */
  listenerCount(project: string, session: string): number {
    return this.#listeners.get(`${project}/${session}`)?.size ?? 0;
  }

  /**
   * Signal that a session's membership (owner, collaborators, roles) changed. Internal only:
   * calls the session's membership listeners, nothing else. A throwing listener is dropped.
   */
  membershipChanged(project: string, session: string): void {
    const key = `${project}/${session}`;
    this.#membershipVersion.set(key, (this.#membershipVersion.get(key) ?? 0) + 1);
    const set = this.#membership.get(key);
    if (!set) return;
    for (const l of [...set]) {
      try {
        l();
      } catch {
        set.delete(l);
      }
    }
  }

  /**
   * How many membership changes of a session this process has signalled. A watcher reads it
   * before its first authorisation and compares after subscribing, so a change in between is
   * not missed.
   */
  membershipVersion(project: string, session: string): number {
    return this.#membershipVersion.get(`${project}/${session}`) ?? 0;
  }

  /** Listen for membership changes of a session; returns the unsubscribe function. */
  onMembershipChange(project: string, session: string, listener: MembershipListener): () => void {
    return addTo(this.#membership, `${project}/${session}`, listener);
  }

  /** Subscribe to a session's events; returns the unsubscribe function. */
  subscribe(project: string, session: string, listener: SessionEventListener): () => void {
    return addTo(this.#listeners, `${project}/${session}`, listener);
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
