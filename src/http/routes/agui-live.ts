/**
 * Shared-session AG-UI routes (issue 3 §4, §5, §7):
 * - `GET  …/agui/events` (owner, edit, view) → SSE: the session's stored events, then every
 *   turn's events live, with `: heartbeat` comments. Each event carries `id: <seq>`, so a client
 *   reconnecting with `Last-Event-ID` gets only what it missed (while retention holds it; see
 *   `resumeAfter` for IDs that are not usable). The replay is at most the log's byte bound.
 *   The watcher is re-checked (src/http/watch-guard.ts) on membership changes and every
 *   `TURNKEY_WATCH_RECHECK_MS`; once it may no longer watch (removed, token expired), the stream
 *   gets a final `: access revoked` comment and ends (`: access could not be re-checked, reconnect`
 *   when the identity provider or store could not answer). A client that does not read gets at most
 *   the replay plus `WATCHER_LIVE_MAX_QUEUED_BYTES` (2 MiB) queued, then `RUN_ERROR
 *   client_too_slow` and the end of the stream (src/http/sse.ts).
 *   Watchers are admitted up to `TURNKEY_MAX_WATCHERS` (gateway) and
 *   `TURNKEY_MAX_WATCHERS_PER_USER`, counted with the WebSockets (src/http/watch-guard.ts
 *   `WatcherSlots`); beyond either → 429 `too_many_watchers`. The slot is released however the
 *   stream ends (client close, revoke, overflow, server stop).
 * - `POST …/agui/interrupt` `{runId?}` (owner, edit) → 202 `{runId, interrupted:true}`, or 404
 *   `run_not_found` when no such turn is running.
 * - `GET  …/agui/capabilities` (owner, edit, view) → the runner's capabilities JSON.
 */
import { Elysia, t } from "elysia";
import type { BaseEvent } from "@ag-ui/core";
import { EventEncoder } from "@ag-ui/encoder";
import { notFound, TurnkeyError } from "../../errors.ts";
import { subjectOf } from "../../identity/principal.ts";
import { authenticate, requireUser, type AppDeps } from "../context.ts";
import { RunIdString, SessionParams } from "../schemas.ts";
import { createSseChannel, SSE_HEADERS } from "../sse.ts";
import { guardWatcher, watcherSlotsFor } from "../watch-guard.ts";
import { authorizeSession } from "./sessions.ts";

const encoder = new EventEncoder();
const utf8 = new TextEncoder();

/** Frames already made, per event object: the bus hands every watcher the same object. */
const frames = new WeakMap<BaseEvent, { seq: number; bytes: Uint8Array }>();

/**
 * SSE frame with an `id:` line (WHATWG HTML §9.2.6), so `Last-Event-ID` can resume. Encoded once
 * per event object and shared by every watcher of the session (an event is published once, with
 * one `seq`).
 */
export function frameWithId(event: BaseEvent, seq: number): Uint8Array {
  const made = frames.get(event);
  if (made?.seq === seq) return made.bytes;
  const bytes = utf8.encode(`id: ${seq}\n${encoder.encodeSSE(event)}`);
  frames.set(event, { seq, bytes });
  return bytes;
}

/**
 * Where a watcher resumes: the sequence number after which events are sent.
 * @param header the `Last-Event-ID` request header (WHATWG HTML §9.2.4), as sent.
 * @param currentSeq the session's newest sequence number (`bus.currentSeq`).
 * @returns the header's number when it is a whole number in `1..currentSeq`, else 0 (replay
 *   everything stored): a missing or malformed ID, and an ID beyond the current sequence (from
 *   before a log reset, or made up), which would otherwise silence the stream until the session
 *   caught up with it.
 * @example resumeAfter("12", 40) // → 12;  resumeAfter("99", 40) // → 0;  resumeAfter("x", 40) // → 0
 */
export function resumeAfter(header: string | null, currentSeq: number): number {
  const raw = header?.trim() ?? "";
  if (!/^\d{1,15}$/.test(raw)) return 0;
  const n = Number(raw);
  return n <= currentSeq ? n : 0;
}

/**
 * Live allowance of a watcher's events stream, bytes (2 MiB), queued on top of its replay. Lower
 * than the requester's own run stream (`DEFAULT_SSE_MAX_QUEUED_BYTES`, 8 MiB): a watcher that
 * falls behind reconnects with `Last-Event-ID`, and many watchers share the gateway's memory.
 */
export const WATCHER_LIVE_MAX_QUEUED_BYTES = 2 * 1024 * 1024;

/** The 429 for a watcher over `TURNKEY_MAX_WATCHERS` (`gateway`) or `TURNKEY_MAX_WATCHERS_PER_USER` (`user`). */
export function tooManyWatchers(refused: "gateway" | "user"): TurnkeyError {
  return new TurnkeyError(
    429,
    "too_many_watchers",
    refused === "user" ? "you have as many live views open as allowed; close one and try again" : "the gateway has as many live views open as it allows; try again shortly",
  );
}

const RUN_ID = new RegExp(RunIdString.pattern ?? "^.+$");

/**
 * The interrupt body: nothing, `{}` or `{runId}` (a run ID as in RunAgentInput).
 * @throws TurnkeyError 400 `validation_failed` for anything else.
 */
export function interruptRunId(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  const bad = () => new TurnkeyError(400, "validation_failed", 'invalid body: expected nothing, {} or {"runId": "<run ID>"}');
  if (typeof body !== "object" || Array.isArray(body)) throw bad();
  const keys = Object.keys(body);
  if (keys.some((k) => k !== "runId")) throw bad();
  const runId = (body as { runId?: unknown }).runId;
  if (runId === undefined) return undefined;
  if (typeof runId !== "string" || runId.length > 128 || !RUN_ID.test(runId)) throw bad();
  return runId;
}

/** Capabilities of a runner Turnkey spawns itself, when the executor does not say. */
export function localCapabilities(deps: Pick<AppDeps, "config">): Record<string, unknown> {
  return {
    framework: "turnkey-local",
    agent_features: [],
    platform_features: ["per-turn-credentials", "interrupt", "shared-session-events"],
    file_system: true,
    mcp: false,
    runner: { mode: deps.config.runnerUrl ? "remote" : "local", protocol: deps.config.runnerProtocol },
  };
}

/** The events stream, interrupt and capabilities routes as an Elysia plugin (see the module doc). */
export const aguiLiveRoutes = (deps: AppDeps) =>
  new Elysia({ name: "aguiLiveRoutes", prefix: "/api/projects/:project/agentic-sessions/:session/agui" })
    .get(
      "/events",
      async ({ params, request, server }) => {
        const { project, session } = params;
        const sinceVersion = deps.bus.membershipVersion(project, session);
        const user = requireUser(await authenticate(deps, request, server));
        const current = await authorizeSession(deps, project, session, user.userId, "watch", subjectOf(user));
        // Replay only this incarnation's events: a session re-created under the same name starts
        // empty, and turns of the earlier one are ended (TurnService.bindIncarnation).
        await deps.turns.bindIncarnation(project, session, current);
        const slot = watcherSlotsFor(deps.config).acquire(user.userId);
        if ("refused" in slot) throw tooManyWatchers(slot.refused);
        server?.timeout(request, 0);
        const remoteAddress = server?.requestIP(request)?.address;
        const afterSeq = resumeAfter(request.headers.get("last-event-id"), deps.bus.currentSeq(project, session));
        let unsubscribe = () => {};
        // The replay is bounded by the retention; the queue cap leaves room for all of it on top
        // of the usual allowance for live events, so a long history is not "client too slow".
        let replay: { seq: number; bytes: Uint8Array }[];
        try {
          replay = (deps.bus.log?.replay(project, session, afterSeq) ?? []).map((r) => ({ seq: r.seq, bytes: frameWithId(r.event, r.seq) }));
        } catch (err) {
          slot.release();
          throw err;
        }
        const replayBytes = replay.reduce((n, r) => n + r.bytes.byteLength, 0);
        const channel = createSseChannel({
          heartbeatMs: deps.config.heartbeatMs,
          maxQueuedBytes: WATCHER_LIVE_MAX_QUEUED_BYTES + replayBytes,
          onCancel: () => unsubscribe(),
        });
        // A first comment flushes the response headers even when there is nothing to replay.
        channel.sendRaw(utf8.encode(": connected\n\n"));
        // Replay and subscribe in one synchronous step: no event can slip in between.
        let last = afterSeq;
        for (const r of replay) {
          channel.sendRaw(r.bytes);
          last = r.seq;
        }
        const offEvents = deps.bus.subscribe(project, session, (event, meta) => {
          if (meta.seq > last) channel.sendRaw(frameWithId(event, meta.seq));
        });
        const guard = guardWatcher({
          bus: deps.bus,
          sessions: deps.sessions,
          project,
          session,
          userId: user.userId,
          recheckMs: deps.config.watchRecheckMs,
          sinceVersion,
          reauthenticate: () => deps.authenticator.authenticate({ headers: request.headers, ...(remoteAddress ? { remoteAddress } : {}) }),
          onEnd: (reason) => {
            unsubscribe();
            channel.sendRaw(utf8.encode(reason === "check_failed" ? ": access could not be re-checked, reconnect\n\n" : ": access revoked\n\n"));
            channel.close();
          },
        });
        // Every way the stream ends (abort, cancel, overflow, revoke) comes through here.
        unsubscribe = () => {
          offEvents();
          guard.stop();
          slot.release();
        };
        const end = () => {
          unsubscribe();
          channel.close();
        };
        // The client may have gone while we authenticated: then no abort event will come.
        if (request.signal.aborted) end();
        else request.signal.addEventListener("abort", end, { once: true });
        return new Response(channel.stream, { headers: SSE_HEADERS });
      },
      { params: SessionParams },
    )
    .post(
      "/interrupt",
      async ({ params, body, request, server, set }) => {
        const user = requireUser(await authenticate(deps, request, server));
        // Checked here, not with `t.Optional(t.Object)`: Elysia coerces a string or array body to {}.
        const runId = interruptRunId(body);
        await authorizeSession(deps, params.project, params.session, user.userId, "interrupt", subjectOf(user));
        const runs = deps.activeRuns.forSession(params.project, params.session);
        const run = runId ? runs.find((r) => r.runId === runId) : runs[0];
        if (!run || !(await deps.turns.interrupt(params.project, params.session, run.runId, deps.config.teardownGraceMs)))
          throw notFound("no such turn is running in this session", "run_not_found");
        deps.audit.write({ event: "turn.interrupt", project: params.project, session: params.session, run: run.runId, principalSubject: `user:${user.userId}`, effectiveUserId: run.userId });
        set.status = 202;
        return { runId: run.runId, interrupted: true };
      },
      { params: SessionParams, body: t.Unknown() },
    )
    .get(
      "/capabilities",
      async ({ params, request, server }) => {
        const user = requireUser(await authenticate(deps, request, server));
        await authorizeSession(deps, params.project, params.session, user.userId, "watch", subjectOf(user));
        const fromExecutor = await deps.turns.capabilities({ project: params.project, session: params.session });
        return fromExecutor ?? localCapabilities(deps);
      },
      { params: SessionParams },
    );
