#!/usr/bin/env bun
/**
 * upstream-style: an HTTP runner that behaves like the upstream platform's runner service, for
 * trying Turnkey's remote mode (`TURNKEY_RUNNER_URL`) and spawned HTTP mode
 * (`TURNKEY_RUNNER_PROTOCOL=http`). Run as `PORT=8001 bun examples/runners/upstream-style.ts`.
 *
 * Endpoints (127.0.0.1:$PORT, or $HOST): `GET /health`, `GET /capabilities`, `POST /interrupt`,
 * and `POST /` with a RunAgentInput, answered as AG-UI SSE: RUN_STARTED, one assistant message,
 * RUN_FINISHED.
 *
 * Like the upstream runner it knows the sender only from the request headers Turnkey sets
 * (`X-Current-User-ID`, `X-Current-User-Name`, `X-Caller-Token`), and it fetches the sender's
 * GitHub credential from `<base>/projects/<project>/agentic-sessions/<session>/credentials/github`
 * with `Authorization: <X-Caller-Token verbatim>` and `X-Runner-Current-User: <X-Current-User-ID>`;
 * on 401 it retries once with its own bot token (`$BOT_TOKEN`), as upstream does.
 * `<base>` is `$BACKEND_API_URL` (upstream's name) or `$TURNKEY_CREDENTIALS_URL`; project and
 * session come from `$PROJECT_NAME`/`$SESSION_ID` (upstream: `$AGENTIC_SESSION_NAMESPACE`/
 * `$AGENTIC_SESSION_NAME`), the session falling back to the input's threadId.
 * It reports whether it got a token and a short SHA-256 prefix of it, never the token.
 */
import { createHash } from "node:crypto";

const env = process.env;
const enc = new TextEncoder();
const frame = (e: Record<string, unknown>) => enc.encode(`data: ${JSON.stringify({ ...e, timestamp: Date.now() })}\n\n`);
let interrupted = false;

/** The sender's GitHub credential via the gateway, as the upstream runner asks for it. */
async function githubFor(headers: Headers, session: string): Promise<string> {
  const base = (env.BACKEND_API_URL ?? env.TURNKEY_CREDENTIALS_URL ?? "").replace(/\/+$/, "");
  const project = env.PROJECT_NAME ?? env.AGENTIC_SESSION_NAMESPACE;
  const caller = headers.get("x-caller-token");
  const user = headers.get("x-current-user-id") ?? "";
  if (!base || !project || !caller) return "no credential endpoint configured";
  const url = `${base}/projects/${encodeURIComponent(project)}/agentic-sessions/${encodeURIComponent(session)}/credentials/github`;
  const ask = (authorization: string) =>
    fetch(url, { headers: { Authorization: authorization, "X-Runner-Current-User": user }, signal: AbortSignal.timeout(5000) });
  try {
    let res = await ask(caller);
    if (res.status === 401 && env.BOT_TOKEN) res = await ask(`Bearer ${env.BOT_TOKEN}`);
    if (res.status === 404) return "no GitHub credential for this user";
    if (!res.ok) return `credential endpoint answered ${res.status}`;
    const { token } = (await res.json()) as { token?: string };
    return token ? `GitHub token sha256:${createHash("sha256").update(token).digest("hex").slice(0, 12)}` : "empty GitHub credential";
  } catch (err) {
    return `credential endpoint unreachable (${(err as Error).name})`;
  }
}

const server = Bun.serve({
  hostname: env.HOST ?? "127.0.0.1",
  port: Number(env.PORT ?? 8001),
  idleTimeout: 0,
  async fetch(req) {
    const path = new URL(req.url).pathname.replace(/\/+$/, "") || "/";
    if (path === "/health") return Response.json({ status: "ok" });
    if (path === "/capabilities") return Response.json({ framework: "upstream-style-example", agent_features: [], platform_features: [], file_system: false, mcp: false });
    if (path === "/interrupt" && req.method === "POST") {
      interrupted = true;
      return Response.json({ message: "Interrupt signal sent" });
    }
    if (path !== "/" || req.method !== "POST") return new Response("not found", { status: 404 });
    const input = (await req.json()) as { threadId: string; runId: string };
    const ids = { threadId: input.threadId, runId: input.runId };
    const session = env.SESSION_ID ?? env.AGENTIC_SESSION_NAME ?? input.threadId;
    interrupted = false;
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(frame({ type: "RUN_STARTED", ...ids }));
        const who = req.headers.get("x-current-user-name") || req.headers.get("x-current-user-id") || "someone";
        const github = await githubFor(req.headers, session);
        if (interrupted) {
          c.enqueue(frame({ type: "RUN_ERROR", message: "interrupted" }));
          return c.close();
        }
        const messageId = crypto.randomUUID();
        c.enqueue(frame({ type: "TEXT_MESSAGE_START", messageId, role: "assistant" }));
        c.enqueue(frame({ type: "TEXT_MESSAGE_CONTENT", messageId, delta: `Hello ${who}. ${github}.` }));
        c.enqueue(frame({ type: "TEXT_MESSAGE_END", messageId }));
        c.enqueue(frame({ type: "RUN_FINISHED", ...ids }));
        c.close();
      },
    });
    return new Response(body, { headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" } });
  },
});
console.error(`upstream-style runner listening on ${server.hostname}:${server.port}`);
