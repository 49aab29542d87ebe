/**
 * The in-memory active-run map (DESIGN §1): key `project/session/runId`, present exactly while
 * the turn lives. Set before the runner gets anything, deleted in the turn's `finally`.
 * It also enforces the concurrency gate: by default one turn per session at a time.
 */
import { conflict, TurnkeyError } from "../errors.ts";

/** One entry of the active-run map: who runs which turn until when. */
export interface ActiveRun {
  project: string;
  session: string;
  runId: string;
  threadId: string;
  userId: string;
  userName: string;
  /** Epoch ms. */
  startedAt: number;
  /** Epoch ms after which the turn is ended and its token is no longer accepted. */
  deadline: number;
  /** `jti` of the turn token minted for this run. */
  tokenId: string;
}

/** `project/session/runId`. Names are DNS-1123 labels and run IDs carry no `/`, so it is unambiguous. */
export const runKey = (project: string, session: string, runId: string) => `${project}/${session}/${runId}`;

/** The active-run map and concurrency gate (module doc). */
export class ActiveRunMap {
  #runs = new Map<string, ActiveRun>();
  #maxPerSession: number;
  #maxTotal: number;

  /**
   * @param maxPerSession concurrent turns allowed per session (default 1).
   * @param maxTotal concurrent turns allowed across the gateway (default unlimited): every turn is
   *   a process, so without a cap any user could start one in as many sessions as they create.
   */
  constructor(maxPerSession = 1, maxTotal = Number.POSITIVE_INFINITY) {
    this.#maxPerSession = maxPerSession;
    this.#maxTotal = maxTotal;
  }

  /**
   * Register a run. @throws TurnkeyError 409 `session_busy` when the session already has
   * `maxPerSession` active runs, or the same run ID is active; 429 `too_many_turns` when the
   * gateway already runs `maxTotal` turns.
   */
  begin(run: ActiveRun): void {
    const key = runKey(run.project, run.session, run.runId);
    if (this.#runs.has(key)) throw conflict("a run with this ID is already active", "session_busy");
    if (this.forSession(run.project, run.session).length >= this.#maxPerSession)
      throw conflict("the session is already running a turn; wait for it to finish", "session_busy");
    if (this.#runs.size >= this.#maxTotal) throw new TurnkeyError(429, "too_many_turns", "the gateway is running as many turns as it allows; try again shortly");
    this.#runs.set(key, { ...run });
  }

  /** The run, if it is active and its deadline has not passed (`now` in epoch ms). */
  get(project: string, session: string, runId: string, now = Date.now()): ActiveRun | undefined {
    const run = this.#runs.get(runKey(project, session, runId));
    return run && run.deadline > now ? run : undefined;
  }

  /** Active runs of one session. */
  forSession(project: string, session: string): ActiveRun[] {
    const prefix = `${project}/${session}/`;
    return [...this.#runs.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
  }

  /** Record the turn token's `jti` on a registered run (minted after `begin`). */
  setTokenId(project: string, session: string, runId: string, tokenId: string): void {
    const run = this.#runs.get(runKey(project, session, runId));
    if (run) run.tokenId = tokenId;
  }

  /** Remove a run; returns whether it was present. Idempotent. */
  end(project: string, session: string, runId: string): boolean {
    return this.#runs.delete(runKey(project, session, runId));
  }

  get size(): number {
    return this.#runs.size;
  }

  /** All active runs (for shutdown and diagnostics). */
  all(): ActiveRun[] {
    return [...this.#runs.values()];
  }
}
