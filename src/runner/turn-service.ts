/**
 * Turn orchestration (DESIGN §2.1 steps 2-9): authorise the sender, register the active run,
 * mint the turn token, resolve the sender's credentials, hand the turn to the executor, and
 * tear everything down in `finally` whatever happened.
 *
 * Split in two so that refusals (403, 404, 409) are plain HTTP errors while anything after the
 * run is registered is reported in-stream as RUN_ERROR:
 * `prepare()` throws `TurnkeyError`; `Turn.execute()` never rejects.
 */
import { randomUUID } from "node:crypto";
import { EventType, type BaseEvent, type RunAgentInput } from "@ag-ui/core";
import { forbidden, notFound, TurnkeyError } from "../errors.ts";
import { mayPerform } from "../rbac/session-access.ts";
import type { ActiveRunMap, ActiveRun } from "../sessions/active-runs.ts";
import { incarnationOf, type Session, type SessionStore } from "../sessions/types.ts";
import type { SessionEventBus } from "../sessions/event-bus.ts";
import type { CredentialStore } from "../credentials/types.ts";
import type { ProviderName } from "../credentials/providers.ts";
import type { AuditSink } from "../audit/types.ts";
import { waitUntil } from "./wait.ts";
import { SecretScrubber } from "./scrub.ts";
import { credentialSecrets } from "../credentials/turn-environment.ts";
import { SenderLedger, withoutSenderClaims, type LedgerMessage } from "../sessions/sender-ledger.ts";
import { TurnAbort, type TurnContext, type TurnEmit, type TurnExecutor, type TurnFlow, type TurnOutcome } from "./types.ts";

/** What the turn service needs of the turn-token issuer (src/identity/turn-token.ts). */
export interface TurnTokenMinter {
  mint(claims: { userId: string; project: string; session: string; runId: string; deadline: number }): Promise<{ token: string; tokenId: string }>;
  revoke(tokenId: string): void;
}

/** Minimal logger shape (pino-compatible). */
export interface TurnLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What `TurnService` is built from (the composition root wires it). */
export interface TurnServiceDeps {
  sessions: SessionStore;
  credentials: CredentialStore;
  activeRuns: ActiveRunMap;
  turnTokens: TurnTokenMinter;
  executor: TurnExecutor;
  audit: AuditSink;
  bus: SessionEventBus;
  logger: TurnLogger;
  providers: readonly ProviderName[];
  /** Turn deadline from its start (ms). */
  turnTimeoutMs: number;
  /** How long a new turn waits for a finished turn's teardown before 409 (ms); default 10000. */
  teardownWaitMs?: number;
  /** Base URL runners call back on, ending in `/api`. */
  credentialsUrl: () => string;
  /** Who sent which message; default a ledger seeded from the bus's event log. */
  senders?: SenderLedger;
}

/** The sender of a turn: always a `user` principal. */
export interface Sender {
  userId: string;
  userName: string;
  email?: string;
  /** The sender's original username/groups (`subjectOf(principal)`), for Kubernetes access reviews. */
  subject?: { username: string; groups?: string[] };
}

/** A registered turn, ready to execute. `execute` may be called once. */
export interface Turn {
  readonly run: Readonly<ActiveRun>;
  /** Run the turn, streaming events to `emit`; resolves after teardown. Never rejects. */
  execute(emit: TurnEmit, signal: AbortSignal, flow?: TurnFlow): Promise<TurnOutcome>;
}

/** Runs turns: `prepare` (authorise, register, mint) then `Turn.execute` (see the module doc). */
export class TurnService {
  #d: TurnServiceDeps;
  /** Abort controllers of live turns, for interrupt and shutdown. */
  #live = new Map<string, AbortController>();
  /**
   * Runs that have sent their terminal event and are only tearing down, per session: a new turn
   * waits for them (bounded) instead of being refused with 409. Watchers see RUN_FINISHED before
   * teardown ends; without this, a client that answers at once would race the teardown.
   */
  #finishing = new Map<string, Set<Promise<void>>>();
  #senders: SenderLedger;
  /** The session incarnation each session's ledger entries belong to. */
  #incarnations = new Map<string, string>();
  /**
   * Per live run: secrets the credential endpoint served during the turn that may not be among
   * those it started with (rotated mid-turn), and a scrubber over them (see `noteServedSecrets`).
   */
  #served = new Map<string, { known: Set<string>; values: Set<string>; scrubber: SecretScrubber }>();
  /** The session incarnation each live run started in (`bindIncarnation`). */
  #runIncarnation = new Map<string, string>();

  constructor(deps: TurnServiceDeps) {
    this.#d = deps;
    this.#senders = deps.senders ?? new SenderLedger({ seed: (project, session) => snapshotMessages(deps.bus, project, session, deps.logger) });
  }

  /**
   * Authorise and register a turn.
   * @param input a RunAgentInput whose threadId/runId are already filled in.
   * @throws TurnkeyError 404 `session_not_found`, 403 `forbidden` (not owner/edit), 409 `session_busy`.
   */
  async prepare(sender: Sender, project: string, session: string, input: RunAgentInput): Promise<Turn> {
    const d = this.#d;
    const role = await d.sessions.roleOf(project, session, sender.userId, sender.subject);
    if (role === "none") {
      // Do not reveal to strangers whether the session exists.
      const exists = (await d.sessions.get(project, session)) !== null;
      if (!exists) throw notFound("session not found", "session_not_found");
      throw forbidden("you may not send turns in this session");
    }
    if (!mayPerform(role, "run")) throw forbidden("view collaborators may watch but not send turns");
    const incarnation = await this.bindIncarnation(project, session);

    const startedAt = Date.now();
    const deadline = startedAt + d.turnTimeoutMs;
    const runId = input.runId;
    // Register before anything else can see the turn: the token is only valid while this entry lives.
    const pending: ActiveRun = { project, session, runId, threadId: input.threadId, userId: sender.userId, userName: sender.userName, startedAt, deadline, tokenId: "" };
    await this.#awaitFinishing(project, session);
    d.activeRuns.begin(pending);
    // Stamped once the run is registered, so refused runs (409, 429) leave nothing in the ledger.
    input = { ...input, messages: this.#senders.stamp(project, session, input.messages, { senderId: sender.userId, senderDisplayName: sender.userName }) };
    let minted: { token: string; tokenId: string };
    try {
      minted = await d.turnTokens.mint({ userId: sender.userId, project, session, runId, deadline });
    } catch (err) {
      d.activeRuns.end(project, session, runId);
      throw err;
    }
    d.activeRuns.setTokenId(project, session, runId, minted.tokenId);
    const run: ActiveRun = { ...pending, tokenId: minted.tokenId };
    d.audit.write({ event: "turn.start", project, session, run: runId, principalSubject: `user:${sender.userId}`, effectiveUserId: sender.userId });
    let executed = false;
    return {
      run,
      execute: (emit, signal, flow) => {
        if (executed) throw new Error("turn already executed");
        executed = true;
        return this.#execute(run, sender, minted.token, input, emit, signal, flow, incarnation);
      },
    };
  }

  /**
   * Interrupt a live turn (issue 3 §5): ask the executor (SIGINT to a local runner's process
   * group, `POST /interrupt` to a remote one); if the turn has not ended `graceMs` later, abort it,
   * which tears it down with RUN_ERROR. Either way the turn ends with a terminal event.
   * @returns false when the run is not live.
   */
  async interrupt(project: string, session: string, runId: string, graceMs: number): Promise<boolean> {
    const c = this.#live.get(`${project}/${session}/${runId}`);
    if (!c) return false;
    let asked = false;
    try {
      asked = (await this.#d.executor.interrupt?.({ project, session, runId })) ?? false;
    } catch {
      asked = false;
    }
    const abort = () => c.abort(new TurnAbort("interrupted", "Turn interrupted"));
    if (!asked) abort();
    else setTimeout(abort, graceMs).unref?.();
    return true;
  }

  /**
   * Record secret values the credential endpoint just served in a session, so every live turn of
   * that session redacts them from its events too. The executor's scrubber holds the values the
   * turn started with; a credential stored or rotated during the turn (or a Kubernetes Secret
   * updated) would otherwise reach the other participants in clear (found by a break-it review).
   * Values the turn started with are already in the executor's scrubber and are skipped, so a
   * turn that merely re-fetches its credentials pays no second scan per event. Runner stderr logs
   * keep only the executor's scrubbing.
   */
  noteServedSecrets(project: string, session: string, values: readonly string[]): void {
    if (values.length === 0) return;
    const prefix = `${project}/${session}/`;
    for (const key of this.#live.keys()) {
      if (!key.startsWith(prefix)) continue;
      const entry = this.#served.get(key);
      if (!entry) continue; // credentials not loaded yet: the executor's scrubber will hold what it loads
      const before = entry.values.size;
      // Only values the turn did not start with: re-serving those needs no second scan per event.
      for (const v of values) if (!entry.known.has(v)) entry.values.add(v);
      if (entry.values.size !== before) entry.scrubber = new SecretScrubber(entry.values);
    }
  }

  /** The executor's capabilities JSON, or undefined when it does not say (issue 3 §7). */
  async capabilities(ctx: { project: string; session: string }): Promise<Record<string, unknown> | undefined> {
    return this.#d.executor.capabilities?.(ctx);
  }

  /** Abort every live turn (gateway shutdown); their teardown runs as usual. */
  abortAll(): void {
    for (const c of this.#live.values()) c.abort(new TurnAbort("gateway_shutdown", "Gateway is shutting down"));
  }

  async #execute(run: ActiveRun, sender: Sender, token: string, input: RunAgentInput, emit: TurnEmit, signal: AbortSignal, flow?: TurnFlow, incarnation?: string): Promise<TurnOutcome> {
    const d = this.#d;
    const key = `${run.project}/${run.session}/${run.runId}`;
    const sessionKey = `${run.project}/${run.session}`;
    if (incarnation !== undefined) this.#runIncarnation.set(key, incarnation);
    let finishing: (() => void) | undefined;
    let endTeardown!: () => void;
    const teardown = new Promise<void>((r) => (endTeardown = r));
    const controller = new AbortController();
    this.#live.set(key, controller);
    const onAbort = () => controller.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    const deadlineTimer = setTimeout(() => controller.abort(new TurnAbort("turn_timeout", "Turn exceeded its time limit")), Math.max(0, run.deadline - Date.now()));
    // Watchers first: handing the event to the requester can abort the turn synchronously (a
    // client too slow to read), and the RUN_ERROR that follows must come after this event.
    const deliver: TurnEmit = (e, raw) => {
      // A turn of an earlier incarnation of the session publishes nothing to the current one.
      if (incarnation === undefined || this.#incarnations.get(sessionKey) === incarnation) d.bus.publish(run.project, run.session, run.runId, e);
      try {
        emit(e, raw);
      } catch {
        /* the caller's stream is gone; the turn still finishes and tears down */
      }
    };
    // Every participant learns who sent the turn: right after RUN_STARTED, a MESSAGES_SNAPSHOT of
    // the input with the sender stamped on its user messages (issue 3 §4).
    let snapshotSent = false;
    const publish: TurnEmit = (e, raw) => {
      if (!finishing && (e.type === EventType.RUN_FINISHED || e.type === EventType.RUN_ERROR)) finishing = this.#markFinishing(run, teardown);
      // Only the gateway says who sent a message: a runner's event loses any sender claim (and its
      // raw bytes, which still hold it).
      let out: BaseEvent = withoutSenderClaims(e) ?? e;
      let bytes = out === e ? raw : undefined;
      // Secrets served to this turn after it started (see `noteServedSecrets`).
      const late = this.#served.get(key)?.scrubber;
      if (late && late.size > 0) {
        const json = JSON.stringify(out);
        if (late.scrub(json) !== json) {
          out = late.scrubValue(out);
          bytes = undefined;
        } else if (bytes) {
          // The runner's raw bytes can hold more than the parsed event (comments, dropped members).
          const text = new TextDecoder().decode(bytes);
          if (late.scrub(text) !== text) bytes = undefined;
        }
      }
      deliver(out, bytes);
      if (!snapshotSent && e.type === EventType.RUN_STARTED) {
        snapshotSent = true;
        deliver({ type: EventType.MESSAGES_SNAPSHOT, messages: input.messages } as BaseEvent);
      }
    };
    // One listener for the whole turn, however often the stream pauses.
    const turnEnded = waitUntil(Infinity, [controller.signal]);
    let outcome: TurnOutcome = { status: "error", message: "turn did not run" };
    try {
      let credentials: TurnContext["credentials"];
      try {
        credentials = await this.#resolveCredentials(sender.userId);
      } catch (err) {
        const message = err instanceof TurnkeyError ? err.message : "credential store unavailable";
        d.logger.error({ run: run.runId, code: err instanceof TurnkeyError ? err.code : "internal_error" }, "credential resolution failed");
        publish({ type: EventType.RUN_STARTED, threadId: run.threadId, runId: run.runId } as BaseEvent);
        publish({ type: EventType.RUN_ERROR, message: `Could not load credentials: ${message}`, code: "store_unavailable" } as BaseEvent);
        return (outcome = { status: "error", message });
      }
      this.#served.set(key, { known: new Set(credentialSecrets(credentials)), values: new Set(), scrubber: new SecretScrubber([]) });
      const ctx: TurnContext = {
        project: run.project,
        session: run.session,
        threadId: run.threadId,
        runId: run.runId,
        userId: sender.userId,
        userName: sender.userName,
        ...(sender.email ? { userEmail: sender.email } : {}),
        turnToken: token,
        credentialsUrl: d.credentialsUrl(),
        credentials,
        input,
        deadline: run.deadline,
        signal: controller.signal,
        // Waiting for the requester must end when the turn does, whatever ends it.
        ...(flow ? { flow: { congested: () => flow.congested(), drained: () => Promise.race([flow.drained(), turnEnded]) } } : {}),
      };
      outcome = await d.executor.execute(ctx, publish);
      return outcome;
    } catch (err) {
      // The executor contract says it never rejects; if it does, still end the stream properly.
      d.logger.error({ run: run.runId, err: err instanceof Error ? err.name : "unknown" }, "executor failed");
      publish({ type: EventType.RUN_ERROR, message: "Internal error while running the turn", code: "internal_error" } as BaseEvent);
      return (outcome = { status: "error", message: "internal error" });
    } finally {
      clearTimeout(deadlineTimer);
      signal.removeEventListener("abort", onAbort);
      this.#live.delete(key);
      this.#served.delete(key);
      this.#runIncarnation.delete(key);
      endTeardown();
      finishing?.();
      d.turnTokens.revoke(run.tokenId);
      d.activeRuns.end(run.project, run.session, run.runId);
      d.audit.write({
        event: "turn.end",
        project: run.project,
        session: run.session,
        run: run.runId,
        principalSubject: `user:${sender.userId}`,
        effectiveUserId: sender.userId,
        outcome: outcome.status,
        durationMs: Date.now() - run.startedAt,
      });
    }
  }

  /**
   * Make sure stored events and message senders belong to the session as it exists now: one
   * deleted and created again under the same name starts empty (`incarnationOf`).
   */
  /**
   * Make sure stored events, message senders and live turns belong to the session as it exists
   * now (`incarnationOf`): one deleted and created again under the same name starts with an empty
   * log and ledger, and turns still running for the earlier incarnation are aborted (RUN_ERROR
   * `session_replaced`, full teardown) and publish nothing more to the session: their events would
   * otherwise reach the new session's participants (found by a break-it review). Waits (at most
   * `teardownWaitMs`) for those turns to end, so the new incarnation is not busy with them.
   * Called for every turn and by the live view before its replay.
   * @param current the session as just read, when the caller has it.
   * @returns the incarnation ID, or undefined when the session does not exist.
   */
  async bindIncarnation(project: string, session: string, current?: Pick<Session, "uid" | "createdAt"> | null): Promise<string | undefined> {
    const s = current ?? (await this.#d.sessions.get(project, session));
    if (!s) return undefined;
    const id = incarnationOf(s);
    const key = `${project}/${session}`;
    this.#d.bus.bindIncarnation(project, session, id);
    if (this.#incarnations.get(key) === id) return id;
    const replaced = this.#incarnations.has(key);
    this.#incarnations.set(key, id);
    if (!replaced) return id;
    this.#senders.forget(project, session);
    const stale = [...this.#runIncarnation].filter(([runKey, inc]) => runKey.startsWith(`${key}/`) && inc !== id).map(([runKey]) => runKey);
    for (const runKey of stale) this.#live.get(runKey)?.abort(new TurnAbort("session_replaced", "The session was deleted and created again"));
    const until = Date.now() + (this.#d.teardownWaitMs ?? 10_000);
    while (stale.some((k) => this.#runIncarnation.has(k)) && Date.now() < until) await Bun.sleep(20);
    return id;
  }

  /** Record that `run` only tears down now; returns the function that forgets it. */
  #markFinishing(run: ActiveRun, teardown: Promise<void>): () => void {
    const key = `${run.project}/${run.session}`;
    let set = this.#finishing.get(key);
    if (!set) this.#finishing.set(key, (set = new Set()));
    set.add(teardown);
    return () => {
      set.delete(teardown);
      if (set.size === 0) this.#finishing.delete(key);
    };
  }

  /**
   * When every active run of the session has already ended and is only tearing down, wait for
   * that (at most `teardownWaitMs`) so the next turn is not refused; otherwise return at once and
   * let the concurrency gate decide.
   */
  async #awaitFinishing(project: string, session: string): Promise<void> {
    const pending = this.#finishing.get(`${project}/${session}`);
    if (!pending || pending.size === 0) return;
    if (this.#d.activeRuns.forSession(project, session).length > pending.size) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(pending), new Promise<void>((r) => (timer = setTimeout(r, this.#d.teardownWaitMs ?? 10_000)))]);
    clearTimeout(timer);
  }

  /** Every configured provider, read in parallel; missing ones are absent. Rejects on store failure. */
  async #resolveCredentials(userId: string): Promise<TurnContext["credentials"]> {
    const d = this.#d;
    const entries = await Promise.all(d.providers.map(async (p) => [p, await d.credentials.get(userId, p)] as const));
    const out: Record<string, unknown> = {};
    for (const [p, v] of entries) if (v) out[p] = v;
    return out as TurnContext["credentials"];
  }
}

/** The messages of a session's stored MESSAGES_SNAPSHOT events, oldest first (seed of the sender ledger). Read errors are logged and yield nothing. */
function* snapshotMessages(bus: SessionEventBus, project: string, session: string, logger: TurnLogger): Iterable<LedgerMessage> {
  let records: ReturnType<NonNullable<SessionEventBus["log"]>["replay"]> = [];
  try {
    records = bus.log?.replay(project, session, 0) ?? [];
  } catch (err) {
    logger.warn({ err: (err as Error).message }, "could not read stored events to restore message senders");
  }
  for (const r of records) if (r.event.type === EventType.MESSAGES_SNAPSHOT) yield* (r.event as unknown as { messages: LedgerMessage[] }).messages ?? [];
}

/** A fresh run ID (UUID v4), per DESIGN §2.1 step 2. */
export const newRunId = () => randomUUID();
