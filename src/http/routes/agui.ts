/**
 * AG-UI routes (DESIGN §2.1):
 * - `POST /api/projects/:project/agentic-sessions/:session/agui/run` with a RunAgentInput.
 *   With `Accept: text/event-stream` (what @ag-ui/client sends) → 200 SSE of AG-UI events.
 *   Otherwise → 202 `{runId, threadId}` and the turn runs in the background.
 *   Refusals before the turn starts are plain JSON errors: 400, 401, 403 (view collaborators,
 *   strangers, turn/service tokens), 404 session_not_found, 409 session_busy.
 */
import { Elysia } from "elysia";
import type { RunAgentInput } from "@ag-ui/core";
import { RunAgentInputSchema } from "@ag-ui/core/schemas";
import { TurnkeyError } from "../../errors.ts";
import { newRunId } from "../../runner/turn-service.ts";
import { authenticate, requireUser, type AppDeps } from "../context.ts";
import { subjectOf } from "../../identity/principal.ts";
import { RunAgentInputBody, SessionParams } from "../schemas.ts";
import { CLIENT_TOO_SLOW, createSseChannel, SSE_HEADERS } from "../sse.ts";
import { streamFlow } from "../flow.ts";
import { TurnAbort } from "../../runner/types.ts";

/** Fill AG-UI defaults (threadId = session name, runId = UUID v4) and check the full schema. */
export function completeRunInput(body: Record<string, unknown>, session: string): RunAgentInput {
  const filled = {
    ...body,
    threadId: (body.threadId as string | undefined) ?? session,
    runId: (body.runId as string | undefined) ?? newRunId(),
    state: body.state ?? {},
    tools: body.tools ?? [],
    context: body.context ?? [],
    forwardedProps: body.forwardedProps ?? {},
  };
  const parsed = RunAgentInputSchema.safeParse(filled);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".") || "body";
    throw new TurnkeyError(400, "validation_failed", `invalid RunAgentInput: ${path}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data as RunAgentInput;
}

/** `POST …/agui/run` (module doc). */
export const aguiRoutes = (deps: AppDeps) =>
  new Elysia({ name: "aguiRoutes", prefix: "/api/projects/:project/agentic-sessions/:session/agui" }).post(
    "/run",
    async ({ params, body, request, server, set }) => {
      const user = requireUser(await authenticate(deps, request, server));
      const input = completeRunInput(body as Record<string, unknown>, params.session);
      const subject = subjectOf(user);
      const turn = await deps.turns.prepare({ userId: user.userId, userName: user.userName, ...(subject ? { subject } : {}) }, params.project, params.session, input);
      const wantsStream = (request.headers.get("accept") ?? "").includes("text/event-stream");

      const abort = new AbortController();
      if (!wantsStream) {
        void turn.execute(() => {}, abort.signal);
        set.status = 202;
        return { runId: turn.run.runId, threadId: turn.run.threadId };
      }
      // The stream may be quiet for minutes while the agent thinks: lift Bun's idle timeout for
      // this request; heartbeats keep intermediaries alive.
      server?.timeout(request, 0);
      const gone = () => abort.abort(new TurnAbort("client_disconnected", "Client disconnected"));
      const channel = createSseChannel({
        heartbeatMs: deps.config.heartbeatMs,
        onCancel: gone,
        onOverflow: () => abort.abort(new TurnAbort(CLIENT_TOO_SLOW, "Client too slow to read the stream")),
      });
      request.signal.addEventListener("abort", gone, { once: true });
      void turn.execute((e, raw) => (raw ? channel.sendRaw(raw) : channel.send(e)), abort.signal, streamFlow({ waitingBytes: () => channel.queuedBytes, closed: () => channel.closed }, abort, deps.config.clientStallMs)).finally(() => channel.close());
      return new Response(channel.stream, { headers: SSE_HEADERS });
    },
    { params: SessionParams, body: RunAgentInputBody },
  );
