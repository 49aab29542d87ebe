/**
 * Keeps a live-view watcher (`GET …/agui/events` SSE, `GET …/agui/ws` WebSocket) honest after it
 * connected: the watcher's credentials and session role are checked again
 * - at once when the session's membership changes through this gateway (the sessions routes
 *   signal it on the event bus's internal membership channel), and
 * - every `recheckMs` (`TURNKEY_WATCH_RECHECK_MS`, default 10 s), because in the Kubernetes
 *   backend RBAC changes outside the gateway (its role lookups are cached up to 30 s) and bearer
 *   tokens expire.
 * A check re-authenticates with the watcher's original credentials (an expired token fails) and
 * asks the session store for the role; the watcher may stay only while that role may `watch`
 * (owner, edit, view) and the user is the one who connected. Failures fail closed (DESIGN §7
 * rule 4): an identity provider or store that cannot answer ends the watch too, as `check_failed`,
 * which callers report as "try again later" (WebSocket 1013), not as a policy violation: the
 * client reconnects, which is cheap (SSE resumes with `Last-Event-ID`).
 */
import type { Principal } from "../identity/principal.ts";
import { subjectOf } from "../identity/principal.ts";
import { mayPerform } from "../rbac/session-access.ts";
import type { SessionEventBus } from "../sessions/event-bus.ts";
import type { SessionStore } from "../sessions/types.ts";

/**
 * Why a watcher was cut: its credentials no longer authenticate it, it lost its role, or the check
 * could not be made (identity provider or store unavailable: transient, the client should retry).
 */
export type WatchEndReason = "unauthenticated" | "not_a_participant" | "check_failed";

/** Options of `guardWatcher`. */
export interface WatchGuardOptions {
  bus: Pick<SessionEventBus, "onMembershipChange" | "membershipVersion">;
  sessions: Pick<SessionStore, "roleOf">;
  project: string;
  session: string;
  /** The user ID the watcher connected as; a re-authentication yielding anyone else ends the watch. */
  userId: string;
  /** Periodic re-check interval, ms. */
  recheckMs: number;
  /** `bus.membershipVersion(project, session)` read before the watcher's first authorisation. */
  sinceVersion: number;
  /** Authenticate again with the watcher's original credentials; null or a throw = not authenticated. */
  reauthenticate: () => Promise<Principal | null>;
  /** Called at most once, when the watcher may no longer watch; the caller closes the stream. */
  onEnd: (reason: WatchEndReason) => void;
}

/** A running guard. */
export interface WatchGuard {
  /** Stop checking (idempotent); call when the watcher goes away. */
  stop(): void;
  /** Run one check now (checks never overlap; a request during one runs another after it). Resolves true while the watcher may stay. */
  check(): Promise<boolean>;
}

/**
 * Decide whether a re-authenticated principal may still watch the session.
 * @returns undefined when it may, else the reason to end the watch. Store errors → `check_failed`.
 */
export async function mayStillWatch(
  sessions: Pick<SessionStore, "roleOf">,
  project: string,
  session: string,
  userId: string,
  principal: Principal | null,
): Promise<WatchEndReason | undefined> {
  if (principal?.kind !== "user" || principal.userId !== userId) return "unauthenticated";
  try {
    const role = await sessions.roleOf(project, session, principal.userId, subjectOf(principal));
    return mayPerform(role, "watch") ? undefined : "not_a_participant";
  } catch {
    return "check_failed";
  }
}

/**
 * Start guarding a watcher (see the module doc). If the session's membership changed since
 * `sinceVersion` (between the first authorisation and now), the first check runs at once.
 */
export function guardWatcher(opts: WatchGuardOptions): WatchGuard {
  let stopped = false;
  let running: Promise<boolean> | undefined;
  let again = false;

  const once = async (): Promise<boolean> => {
    let principal: Principal | null = null;
    let unavailable = false;
    try {
      principal = await opts.reauthenticate();
    } catch (err) {
      unavailable = (err as { status?: unknown })?.status === 503;
    }
    const reason = unavailable ? "check_failed" : await mayStillWatch(opts.sessions, opts.project, opts.session, opts.userId, principal);
    if (reason === undefined || stopped) return !stopped;
    stop();
    opts.onEnd(reason);
    return false;
  };
  const check = (): Promise<boolean> => {
    if (stopped) return Promise.resolve(false);
    // A change signalled while a check is in flight may have landed after its role lookup: run again.
    if (running) {
      again = true;
      return running;
    }
    running = once().finally(() => {
      running = undefined;
      if (again && !stopped) {
        again = false;
        void check();
      }
    });
    return running;
  };

  const timer = setInterval(() => void check(), opts.recheckMs);
  const offMembership = opts.bus.onMembershipChange(opts.project, opts.session, () => void check());
  function stop(): void {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    offMembership();
  }
  if (opts.bus.membershipVersion(opts.project, opts.session) !== opts.sinceVersion) void check();
  return { stop, check };
}

/** Options of `WatcherSlots`: the caps, counted over SSE events streams and WebSockets together. */
export interface WatcherLimits {
  /** Concurrent watchers across the gateway (`TURNKEY_MAX_WATCHERS`). */
  maxWatchers: number;
  /** Concurrent watchers of one user ID (`TURNKEY_MAX_WATCHERS_PER_USER`). */
  maxWatchersPerUser: number;
}

/** Which cap refused a watcher. */
export type WatcherRefusal = "gateway" | "user";

/**
 * Admission of live-view watchers: each one may hold up to its queue cap in memory (replay plus
 * live allowance), so their number is bounded gateway-wide and per user (security review: 100
 * SSE watchers that never read took the gateway from 87 MB to 1.2 GB during one 13 MB turn).
 * `acquire` hands out a release function; calling it more than once is harmless, so every way a
 * watcher ends (client close, revoke, overflow, server stop) may call it.
 */
export class WatcherSlots {
  readonly #limits: WatcherLimits;
  #total = 0;
  readonly #perUser = new Map<string, number>();

  constructor(limits: WatcherLimits) {
    this.#limits = limits;
  }

  /** Watchers currently admitted (all users). */
  get size(): number {
    return this.#total;
  }

  /** Watchers currently admitted for `userId`. */
  countOf(userId: string): number {
    return this.#perUser.get(userId) ?? 0;
  }

  /**
   * Admit one watcher of `userId`.
   * @returns an idempotent release function, or the cap that refused it (nothing is held then).
   */
  acquire(userId: string): { release: () => void } | { refused: WatcherRefusal } {
    if (this.#total >= this.#limits.maxWatchers) return { refused: "gateway" };
    const mine = this.countOf(userId);
    if (mine >= this.#limits.maxWatchersPerUser) return { refused: "user" };
    this.#total++;
    this.#perUser.set(userId, mine + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#total--;
        const left = this.countOf(userId) - 1;
        if (left > 0) this.#perUser.set(userId, left);
        else this.#perUser.delete(userId);
      },
    };
  }
}

const slotsByConfig = new WeakMap<object, WatcherSlots>();

/**
 * The one `WatcherSlots` of a gateway, shared by the SSE and WebSocket route plugins. Keyed by
 * the gateway's config object (one per `startServer`), so two gateways in one process (tests)
 * count separately.
 */
export function watcherSlotsFor(config: WatcherLimits & object): WatcherSlots {
  let slots = slotsByConfig.get(config);
  if (!slots) slotsByConfig.set(config, (slots = new WatcherSlots(config)));
  return slots;
}
