import { afterEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BaseEvent } from "@ag-ui/core";
import { RemoteRunnerProxy, UNKNOWN_CAPABILITIES, type RemoteRunnerOptions } from "../../src/runner/remote.ts";
import type { TurnContext, TurnOutcome } from "../../src/runner/types.ts";
import { makeContext, SECRETS } from "./context.ts";
import { memoryLogger } from "./harness.ts";
import { frame, freePort, happyRun, sse, startFakeRunner, type FakeRunner } from "../fixtures/remote/fake-runner.ts";

const runners: FakeRunner[] = [];
const fake = (...a: Parameters<typeof startFakeRunner>) => {
  const r = startFakeRunner(...a);
  runners.push(r);
  return r;
};
afterEach(() => {
  for (const r of runners.splice(0)) r.stop();
});

const dec = new TextDecoder();
interface Got {
  events: BaseEvent[];
  raws: (string | undefined)[];
  types: string[];
  outcome: TurnOutcome;
  ms: number;
}

function proxy(urlTemplate: string, extra: Partial<RemoteRunnerOptions> = {}) {
  const mem = memoryLogger();
  return { p: new RemoteRunnerProxy({ urlTemplate, logger: mem.logger, retry: { budgetMs: 2000 }, ...extra }), logs: mem.lines };
}

async function run(p: RemoteRunnerProxy, ctx: TurnContext, onEvent?: (e: BaseEvent) => void): Promise<Got> {
  const events: BaseEvent[] = [];
  const raws: (string | undefined)[] = [];
  const t0 = Date.now();
  const outcome = await p.execute(ctx, (e, raw) => {
    events.push(e);
    raws.push(raw ? dec.decode(raw) : undefined);
    onEvent?.(e);
  });
  return { events, raws, types: events.map((e) => e.type as string), outcome, ms: Date.now() - t0 };
}

const BUN_DEFAULT_HEADERS = ["accept-encoding", "connection", "content-length", "host", "user-agent"];

describe("RemoteRunnerProxy: request", () => {
  test("POSTs the RunAgentInput with exactly the identity headers; the name is sanitised", async () => {
    const r = fake((_req, rec) => sse(happyRun(JSON.parse(rec.body).threadId, JSON.parse(rec.body).runId)));
    const { p } = proxy(r.url.replace(/\/$/, "") + "/{project}/{session}/");
    const ctx = makeContext({ userId: "alice", userName: "Alice\r\nX-Caller-Token: Bearer evil\u0000\u007f" + "x".repeat(400) });
    const g = await run(p, ctx);
    expect(g.outcome.status).toBe("finished");
    const req = r.requests[0]!;
    expect(req.method).toBe("POST");
    expect(req.path).toBe("/proj-a/sess-1/");
    expect(JSON.parse(req.body)).toEqual(JSON.parse(JSON.stringify(ctx.input)));
    expect(Object.keys(req.headers).sort()).toEqual(
      [...BUN_DEFAULT_HEADERS, "accept", "content-type", "x-caller-token", "x-current-user-id", "x-current-user-name"].sort(),
    );
    expect(req.headers["content-type"]).toBe("application/json");
    expect(req.headers.accept).toBe("text/event-stream");
    expect(req.headers["accept-encoding"]).toBe("identity");
    expect(req.headers["x-current-user-id"]).toBe("alice");
    expect(req.headers["x-caller-token"]).toBe(`Bearer ${SECRETS.turnToken}`);
    const name = req.headers["x-current-user-name"]!;
    expect(name).not.toMatch(/[\r\n\u0000-\u001f\u007f]/);
    expect(name.startsWith("AliceX-Caller-Token: Bearer evil")).toBe(true);
    expect(name.length).toBe(255);
    // Nothing a client could have sent: the executor never sees the client's request.
    for (const h of ["authorization", "cookie", "x-runner-current-user", "x-forwarded-for", "x-forwarded-user"]) expect(req.headers[h]).toBeUndefined();
  });

  test("non-Latin-1 display names go out as UTF-8 bytes; user IDs are sanitised", async () => {
    const r = fake((_req, rec) => sse(happyRun(JSON.parse(rec.body).threadId, JSON.parse(rec.body).runId)));
    const { p } = proxy(r.url);
    await run(p, makeContext({ userId: "bob@example.com", userName: "山田 Zoë" }));
    const h = r.requests[0]!.headers;
    expect(h["x-current-user-id"]).toBe("bob-example.com");
    expect(Buffer.from(h["x-current-user-name"]!, "latin1").toString("utf8")).toBe("山田 Zoë");
  });

  test("X-Ambient-Session-Token is read from the file per turn (rotation); a missing file omits it with a warning", async () => {
    const dir = await mkdtemp(join(tmpdir(), "turnkey-remote-"));
    try {
      const file = join(dir, "token");
      const r = fake((_req, rec) => sse(happyRun(JSON.parse(rec.body).threadId, JSON.parse(rec.body).runId)));
      const { p, logs } = proxy(r.url, { sessionTokenFile: file });
      await writeFile(file, "session-token-one\n");
      await run(p, makeContext());
      await writeFile(file, "session-token-two");
      await run(p, makeContext());
      await rm(file);
      await run(p, makeContext());
      expect(r.requests.map((q) => q.headers["x-ambient-session-token"])).toEqual(["session-token-one", "session-token-two", undefined]);
      expect(logs.some((l) => l.level === "warn" && /session token/.test(l.msg ?? ""))).toBe(true);
      expect(JSON.stringify(logs)).not.toContain("session-token-");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("RemoteRunnerProxy: byte-for-byte pass-through", () => {
  test("each event is handed on with exactly the bytes the runner sent", async () => {
    const ctx = makeContext();
    const { threadId, runId } = ctx;
    const blocks = [
      `: leading comment\r\ndata:  ${JSON.stringify({ type: "RUN_STARTED", threadId, runId })}\r\n\r\n`,
      `event: message\nid: 7\ndata: {"type":"TEXT_MESSAGE_START",\ndata:   "messageId":"m1","role":"assistant"}\n\n`,
      `data: {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m1", "delta": "a  b\\r\\n c"}\r\r`,
      `data:{"type":"TEXT_MESSAGE_END","messageId":"m1"}\r\n: trailing comment\r\n\r\n`,
      `data: ${JSON.stringify({ type: "RUN_FINISHED", threadId, runId })}\n\n`,
    ];
    // Sent in awkward pieces: mid-line, between CR and LF, one byte at a time.
    const body = ": ping\n\n" + blocks.join("");
    const parts: string[] = [];
    for (let i = 0; i < body.length; i += 7) parts.push(body.slice(i, i + 7));
    const r = fake(() => sse(parts));
    const { p } = proxy(r.url);
    const g = await run(p, ctx);
    expect(g.outcome.status).toBe("finished");
    expect(g.types).toEqual(["RUN_STARTED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END", "RUN_FINISHED"]);
    // The comment-only ": ping" block is dropped; the block framed with lone CRs is re-encoded
    // (SSE ends lines at a bare CR, @ag-ui/client does not: raw, the sender would parse it differently).
    expect(g.raws).toEqual([blocks[0], blocks[1], undefined, blocks[3], blocks[4]]);
    expect((g.events[2] as unknown as { delta: string }).delta).toBe("a  b\r\n c");
  });

  test("a lone CR cannot make the sender's client and the watchers see different events; a secret under __proto__ is not passed raw", async () => {
    const ctx = makeContext();
    const hidden = `: c\rdata: ${JSON.stringify({ type: "TEXT_MESSAGE_CONTENT", messageId: "m1", delta: "hidden" })}\r\r\n`;
    const proto = `data: {"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"x","__proto__":{"leak":"\\u0067${SECRETS.github.slice(1)}"}}\n\n`;
    const r = fake(() => sse([frame({ type: "RUN_STARTED", threadId: ctx.threadId, runId: ctx.runId }), hidden, proto, frame({ type: "RUN_FINISHED", threadId: ctx.threadId, runId: ctx.runId })]));
    const { p } = proxy(r.url);
    const g = await run(p, ctx);
    expect(g.types).toEqual(["RUN_STARTED", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_CONTENT", "RUN_FINISHED"]);
    expect([g.raws[1], g.raws[2]]).toEqual([undefined, undefined]); // both re-encoded
    expect(JSON.stringify(g.raws)).not.toContain("\\u0067");
  });

  test("a runner echoing a secret: the event is re-encoded with [REDACTED], never passed raw", async () => {
    const ctx = makeContext();
    const r = fake(() =>
      sse([
        frame({ type: "RUN_STARTED", threadId: ctx.threadId, runId: ctx.runId }),
        frame({ type: "TEXT_MESSAGE_CONTENT", messageId: "m1", delta: `token ${SECRETS.github}` }),
        // The same secret spelt with JSON \u escapes: only visible once decoded.
        `data: {"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"\\u0067${SECRETS.gitlab.slice(1)}"}\n\n`,
        // A secret in a comment line inside an event block.
        `: ${SECRETS.turnToken}\ndata: {"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"clean"}\n\n`,
        frame({ type: "RUN_FINISHED", threadId: ctx.threadId, runId: ctx.runId }),
      ]),
    );
    const { p } = proxy(r.url);
    const g = await run(p, ctx);
    expect(g.outcome.status).toBe("finished");
    expect(g.raws[1]).toBeUndefined();
    expect((g.events[1] as unknown as { delta: string }).delta).toBe("token [REDACTED]");
    expect(g.raws[2]).toBeUndefined();
    expect((g.events[2] as unknown as { delta: string }).delta).toBe("[REDACTED]");
    expect(g.raws[3]).toBeUndefined();
    expect((g.events[3] as unknown as { delta: string }).delta).toBe("clean");
    expect(g.raws[0]).toBeDefined();
    const all = JSON.stringify(g);
    for (const s of Object.values(SECRETS)) expect(all).not.toContain(s);
  });

  test("stream shape: RUN_STARTED synthesised, foreign run IDs rewritten (not raw), events after the terminal one dropped", async () => {
    const ctx = makeContext();
    const r = fake(() =>
      sse([
        frame({ type: "TEXT_MESSAGE_START", messageId: "m1", role: "assistant" }),
        "data: not json\n\n",
        frame({ type: "NOT_AN_EVENT" }),
        frame({ type: "RUN_FINISHED", threadId: "other", runId: "other" }),
        frame({ type: "TEXT_MESSAGE_END", messageId: "m1" }),
        frame({ type: "RUN_ERROR", message: "late" }),
      ]),
    );
    const { p } = proxy(r.url);
    const g = await run(p, ctx);
    expect(g.types).toEqual(["RUN_STARTED", "TEXT_MESSAGE_START", "RUN_FINISHED"]);
    expect(g.raws).toEqual([undefined, frame({ type: "TEXT_MESSAGE_START", messageId: "m1", role: "assistant" }), undefined]);
    expect(g.events[2]).toMatchObject({ threadId: ctx.threadId, runId: ctx.runId });
    expect(g.outcome.status).toBe("finished");
  });

  test("a stream that ends without a terminal event gets a synthesised RUN_ERROR", async () => {
    const ctx = makeContext();
    const r = fake(() => sse([frame({ type: "RUN_STARTED", threadId: ctx.threadId, runId: ctx.runId }), "data: {\"type\":\"TEXT_MESSAGE_START\""]));
    const { p } = proxy(r.url);
    const g = await run(p, ctx);
    expect(g.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(g.events[1]).toMatchObject({ code: "runner_stream_ended" });
    expect(g.outcome.status).toBe("error");
  });
});

describe("RemoteRunnerProxy: failures and lifecycle", () => {
  test("runner down for 3 s, then up: the turn succeeds", async () => {
    const port = freePort();
    const ctx = makeContext();
    setTimeout(() => fake(() => sse(happyRun(ctx.threadId, ctx.runId)), port), 3000);
    const { p } = proxy(`http://127.0.0.1:${port}/`, { retry: { budgetMs: 10_000 } });
    const g = await run(p, ctx);
    expect(g.outcome.status).toBe("finished");
    expect(g.types.at(-1)).toBe("RUN_FINISHED");
    expect(g.ms).toBeGreaterThanOrEqual(2900);
  });

  test("runner down for good: RUN_STARTED + RUN_ERROR runner_unavailable within the retry budget", async () => {
    const port = freePort();
    const { p } = proxy(`http://127.0.0.1:${port}/`, { retry: { budgetMs: 1500 } });
    const g = await run(p, makeContext());
    expect(g.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(g.events[1]).toMatchObject({ message: "Runner is not available", code: "runner_unavailable" });
    expect(g.ms).toBeGreaterThanOrEqual(1400);
    expect(g.ms).toBeLessThan(2500);
  });

  test("non-2xx → RUN_ERROR \"Runner error: HTTP 502\"; redirects are not followed", async () => {
    const bad = fake(() => new Response("upstream down", { status: 502 }));
    const g = await run(proxy(bad.url).p, makeContext());
    expect(g.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(g.events[1]).toMatchObject({ message: "Runner error: HTTP 502", code: "runner_http_error" });
    const elsewhere = fake(() => new Response("should not be reached"));
    const redirecting = fake(() => new Response(null, { status: 307, headers: { Location: elsewhere.url } }));
    const g2 = await run(proxy(redirecting.url).p, makeContext());
    expect(g2.events[1]).toMatchObject({ message: "Runner error: HTTP 307" });
    expect(elsewhere.requests).toHaveLength(0);
  });

  test("aborting the turn closes the upstream connection", async () => {
    const ctx0 = makeContext();
    const r = fake(() => sse([frame({ type: "RUN_STARTED", threadId: ctx0.threadId, runId: ctx0.runId }), "hold"]));
    const { p } = proxy(r.url);
    const ac = new AbortController();
    const ctx = { ...ctx0, signal: ac.signal };
    const g = await run(p, ctx, (e) => e.type === "RUN_STARTED" && setTimeout(() => ac.abort(), 50));
    expect(g.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(g.events[1]).toMatchObject({ code: "turn_aborted" });
    expect(g.outcome.status).toBe("aborted");
    await Promise.race([r.requests[0]!.closed, Bun.sleep(2000)]);
    expect(r.requests[0]!.isClosed()).toBe(true);
  });

  test("the turn deadline ends a hanging stream with turn_timeout; shutdown ends live turns", async () => {
    const ctx0 = makeContext({ deadline: Date.now() + 300 });
    const r = fake(() => sse([frame({ type: "RUN_STARTED", threadId: ctx0.threadId, runId: ctx0.runId }), "hold"]));
    const g = await run(proxy(r.url).p, ctx0);
    expect(g.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "turn_timeout" });
    expect(g.outcome.status).toBe("timeout");

    const { p } = proxy(r.url);
    const pending = run(p, makeContext());
    await Bun.sleep(200);
    expect(p.liveTurns).toBe(1);
    await p.shutdown();
    const g2 = await pending;
    expect(g2.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "gateway_shutdown" });
    const g3 = await run(p, makeContext());
    expect(g3.events.at(-1)).toMatchObject({ code: "gateway_shutdown" });
  });

  test("interrupt POSTs <base>/interrupt with the turn's identity headers", async () => {
    const ctx = makeContext();
    const r = fake((_req, rec) => {
      if (rec.path === "/agui/interrupt") return Response.json({ message: "ok" });
      return sse([frame({ type: "RUN_STARTED", threadId: ctx.threadId, runId: ctx.runId }), { pause: 300 }, frame({ type: "RUN_ERROR", message: "interrupted" })]);
    });
    const { p } = proxy(r.url + "agui/");
    expect(await p.interrupt({ ...ctx, runId: "no-such-run" })).toBe(false);
    let interrupted: Promise<boolean[]> | undefined;
    const g = await run(p, ctx, (e) => {
      if (e.type === "RUN_STARTED") interrupted = Promise.all([p.interrupt({ ...ctx, session: "other" }), p.interrupt(ctx)]);
    });
    expect(await interrupted).toEqual([false, true]);
    expect(g.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    const req = r.requests.find((q) => q.path === "/agui/interrupt")!;
    expect(req.method).toBe("POST");
    expect(JSON.parse(req.body)).toEqual({ thread_id: ctx.threadId, run_id: ctx.runId });
    expect(req.headers["x-caller-token"]).toBe(`Bearer ${SECRETS.turnToken}`);
    expect(req.headers["x-current-user-id"]).toBe("alice");
  });

  test("capabilities: the runner's JSON, else the fallback (error status, not an object, unreachable, slow)", async () => {
    const caps = { framework: "claude-agent-sdk", agent_features: ["thinking"], platform_features: [], file_system: true, mcp: true };
    const ok = fake((_req, rec) => (rec.path === "/s/sess-1/capabilities" ? Response.json(caps) : new Response("", { status: 404 })));
    expect(await proxy(ok.url + "s/{session}").p.capabilities({ project: "proj-a", session: "sess-1" })).toEqual(caps);
    const where = { project: "p", session: "s" };
    expect(await proxy(fake(() => new Response("x", { status: 500 })).url).p.capabilities(where)).toEqual({ ...UNKNOWN_CAPABILITIES });
    expect(await proxy(fake(() => Response.json([1])).url).p.capabilities(where)).toEqual({ ...UNKNOWN_CAPABILITIES });
    expect(await proxy(`http://127.0.0.1:${freePort()}/`).p.capabilities(where)).toEqual({ ...UNKNOWN_CAPABILITIES });
    const slow = fake(async () => {
      await Bun.sleep(1000);
      return Response.json(caps);
    });
    const t0 = Date.now();
    expect(await proxy(slow.url, { capabilitiesTimeoutMs: 200 }).p.capabilities(where)).toEqual({ ...UNKNOWN_CAPABILITIES });
    expect(Date.now() - t0).toBeLessThan(900);
  });

  test("a bad URL template is a ConfigError", () => {
    expect(() => new RemoteRunnerProxy({ urlTemplate: "ftp://{session}/" })).toThrow(/runnerUrl/);
    expect(() => new RemoteRunnerProxy({ urlTemplate: "http://{session" + " bad/" })).toThrow(/runnerUrl/);
  });
});
