/**
 * The live-turn bookkeeping every turn executor keeps (local supervisor, HTTP runner supervisor,
 * remote runner proxy): which turns are executing, interrupting them by run ID, and the gateway
 * shutdown that stops them all and waits for their teardown (DESIGN §7 rule 2).
 */
import { signalProcessGroup } from "./process-group.ts";
import type { RunRef, TurnOutcome } from "./types.ts";

/** What the bookkeeping needs of a turn record; executors extend it with their own fields. */
export interface LiveTurn extends RunRef {
  /** Project, session and AG-UI run ID of the turn; `interrupt` and `forRun` select on all three. */
  /** Process group ID (the runner's PID) once a runner is spawned; only spawning executors set it. */
  pid?: number;
  /** Aborted with the executor's shutdown reason by `shutdown`, or by the executor itself. */
  stop: AbortController;
}

/** The `RunRef` of a turn context (or anything carrying project, session and run ID). */
export const runRef = (ctx: RunRef): RunRef => ({ project: ctx.project, session: ctx.session, runId: ctx.runId });

/**
 * The set of turns an executor is running, from `track` until their teardown ends.
 * @example
 * #turns = new LiveTurns<LiveTurn>();
 * execute(ctx, emit) {
 *   return this.#turns.track({ ...runRef(ctx), stop: new AbortController() }, (live) => this.#execute(ctx, emit, live));
 * }
 */
export class LiveTurns<T extends LiveTurn> {
  #live = new Map<T, Promise<TurnOutcome> | undefined>();
  #closed = false;

  /** Number of turns currently executing (set up, running or tearing down). */
  get size(): number {
    return this.#live.size;
  }

  /** True once `shutdown` was called: executors refuse new turns (RUN_ERROR `gateway_shutdown`). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Track `turn` while `run(turn)` executes; it is forgotten when that promise settles.
   * `run` is called synchronously, after the turn is tracked.
   * @returns `run`'s promise (settled only after the untracking is queued).
   */
  track(turn: T, run: (turn: T) => Promise<TurnOutcome>): Promise<TurnOutcome> {
    this.#live.set(turn, undefined);
    const done = run(turn).finally(() => this.#live.delete(turn));
    this.#live.set(turn, done);
    return done;
  }

  /** The live turns of this run of this session, in start order. */
  forRun(ref: RunRef): T[] {
    return [...this.#live.keys()].filter((t) => t.runId === ref.runId && t.session === ref.session && t.project === ref.project);
  }

  /**
   * Send SIGINT to the process group of every live turn of `ref` that has a runner process; the
   * runner decides how to wind down (it should still end with a terminal event). A signal that
   * fails is logged at warn (`{runId, err}`) and skipped.
   * @returns true if at least one process group was signalled.
   */
  interrupt(ref: RunRef, log: { warn(obj: object, msg?: string): void }): boolean {
    let hit = false;
    for (const t of this.forRun(ref)) {
      if (!t.pid) continue;
      try {
        hit = signalProcessGroup(t.pid, "SIGINT") || hit;
      } catch (err) {
        log.warn({ runId: ref.runId, err: String(err) }, "could not interrupt runner");
      }
    }
    return hit;
  }

  /**
   * Mark the set closed, abort every live turn's `stop` with `reason` (the executor's shutdown
   * reason, which its turns turn into RUN_ERROR `gateway_shutdown`), and wait until each turn's
   * promise has settled, teardown included. Turns tracked afterwards are not waited for.
   */
  async shutdown(reason: unknown): Promise<void> {
    this.#closed = true;
    const pending = [...this.#live];
    for (const [t] of pending) t.stop.abort(reason);
    await Promise.allSettled(pending.map(([, done]) => done));
  }
}
