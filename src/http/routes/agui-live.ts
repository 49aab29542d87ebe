/**
 * Shared-session AG-UI routes (issue 3 §4, §5, §7):
 * - `GET  …/agui/events` (owner, edit, view) → SSE: the session's stored events, then every
 *   turn's events live, with `: heartbeat` comments. Each event carries `id: <seq>`, so a client
 *   reconnecting with `Last-Event-ID` gets only what it missed (while retention holds it).
 * - `POST …/agui/interrupt` `{runId?}` (owner, edit) → 202 `{runId, interrupted:true}`, or 404
 *   `run_not_found` when no such turn is running.
 * - `GET  …/agui/capabilities` (owner, edit, view) → the runner's capabilities JSON.
 */
import { Elysia, t } from "elysia";
import type { BaseEvent } from "@ag-ui/core";
import { EventEncoder } from "@ag-ui/encoder";
import { notFound } from "../../errors.ts";
import { subjectOf } from "../../identity/principal.ts";
import { authenticate, requireUser, type AppDeps } from "../context.ts";
import { RunIdString, SessionParams } from "../schemas.ts";
import { createSseChannel, DEFAULT_SSE_MAX_QUEUED_BYTES, SSE_HEADERS } from "../sse.ts";
import { authorizeSession } from "./sessions.ts";

const encoder = new EventEncoder();
const utf8 = new TextEncoder();

/** SSE frame with an `id:` line (WHATWG HTML §9.2.6), so `Last-Event-ID` can resume. */
export function frameWithId(event: BaseEvent, seq: number): Uint8Array {
  return utf8.encode(`id: ${seq}\n${encoder.encodeSSE(event)}`);
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

export const aguiLiveRoutes = (deps: AppDeps) =>
  new Elysia({ name: "aguiLiveRoutes", prefix: "/api/projects/:project/agentic-sessions/:session/agui" })
    .get(
      "/events",
      async ({ params, request, server }) => {
        const user = requireUser(await authenticate(deps, request, server));
        await authorizeSession(deps, params.project, params.session, user.userId, "watch", subjectOf(user));
        server?.timeout(request, 0);
        const lastId = Number(request.headers.get("last-event-id") ?? "0");
        const afterSeq = Number.isSafeInteger(lastId) && lastId > 0 ? lastId : 0;
        let unsubscribe = () => {};
        // The replay is bounded by the retention; the queue cap leaves room for all of it on top
        // of the usual allowance for live events, so a long history is not "client too slow".
        const replay = (deps.bus.log?.replay(params.project, params.session, afterSeq) ?? []).map((r) => ({ seq: r.seq, bytes: frameWithId(r.event, r.seq) }));
        const replayBytes = replay.reduce((n, r) => n + r.bytes.byteLength, 0);
        const channel = createSseChannel({
          heartbeatMs: deps.config.heartbeatMs,
          maxQueuedBytes: DEFAULT_SSE_MAX_QUEUED_BYTES + replayBytes,
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
        unsubscribe = deps.bus.subscribe(params.project, params.session, (event, meta) => {
          if (meta.seq > last) channel.sendRaw(frameWithId(event, meta.seq));
        });
        request.signal.addEventListener("abort", () => {
          unsubscribe();
          channel.close();
        }, { once: true });
        return new Response(channel.stream, { headers: SSE_HEADERS });
      },
      { params: SessionParams },
    )
    .post(
      "/interrupt",
      async ({ params, body, request, server, set }) => {
        const user = requireUser(await authenticate(deps, request, server));
        await authorizeSession(deps, params.project, params.session, user.userId, "interrupt", subjectOf(user));
        const runs = deps.activeRuns.forSession(params.project, params.session);
        const run = body?.runId ? runs.find((r) => r.runId === body.runId) : runs[0];
        if (!run || !(await deps.turns.interrupt(params.project, params.session, run.runId, deps.config.teardownGraceMs)))
          throw notFound("no such turn is running in this session", "run_not_found");
        set.status = 202;
        return { runId: run.runId, interrupted: true };
      },
      { params: SessionParams, body: t.Optional(t.Object({ runId: t.Optional(RunIdString) }, { additionalProperties: false })) },
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
