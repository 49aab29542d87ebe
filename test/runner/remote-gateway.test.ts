/**
 * The remote runner proxy through the real gateway (TURNKEY_RUNNER_URL → RemoteRunnerProxy via
 * src/runner/select.ts): client headers never reach the runner, the runner's bytes reach the
 * client unchanged, the turn token works on the credential endpoint only during the turn, and a
 * 20 s silent runner does not get cut by any fetch or server idle timeout.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { frame, sse, startFakeRunner, type FakeRunner, type Part } from "../fixtures/remote/fake-runner.ts";

const GH = "ghp_remote_gateway_test_000000000000000";
let gw: TestGateway;
let runner: FakeRunner;
let script: (input: { threadId: string; runId: string }, headers: Record<string, string>) => Promise<Part[]>;
let alice: string;

beforeAll(async () => {
  runner = startFakeRunner(async (_req, rec) => sse(await script(JSON.parse(rec.body), rec.headers)));
  gw = await startGateway({ TURNKEY_RUNNER_URL: runner.url.replace(/\/$/, "") + "/{project}/{session}", TURNKEY_HEARTBEAT_MS: "5000" });
  alice = await gw.token("alice", "Alice");
  expect((await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: alice, body: { name: "remote" } })).status).toBe(201);
  expect((await gw.api("PUT", "/api/users/me/credentials/github", { token: alice, body: { token: GH, userName: "alice" } })).status).toBe(200);
});
afterAll(async () => {
  await gw?.stop();
  runner?.stop();
});

async function post(headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/remote/agui/run`, {
    method: "POST",
    headers: { authorization: `Bearer ${alice}`, "content-type": "application/json", accept: "text/event-stream", ...headers },
    body: JSON.stringify({ messages: [{ id: "m1", role: "user", content: "hi" }] }),
  });
  return { status: res.status, text: await res.text() };
}

describe("remote runner through the gateway", () => {
  test("spoofed client headers never arrive; the runner's bytes arrive unchanged; the turn token works only during the turn", async () => {
    let during: { status: number; body: string } | undefined;
    let callerToken = "";
    let blocks: string[] = [];
    script = async (input, headers) => {
      callerToken = headers["x-caller-token"]!;
      const res = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/remote/credentials/github`, { headers: { authorization: callerToken } });
      during = { status: res.status, body: await res.text() };
      blocks = [
        `: hello\r\ndata:  ${JSON.stringify({ type: "RUN_STARTED", threadId: input.threadId, runId: input.runId })}\r\n\r\n`,
        `data: {"type":"TEXT_MESSAGE_CONTENT", "messageId":"m1","delta":"x"}\r\r`,
        frame({ type: "TEXT_MESSAGE_CONTENT", messageId: "m1", delta: `echo ${GH}` }),
        `data: ${JSON.stringify({ type: "RUN_FINISHED", threadId: input.threadId, runId: input.runId })}\n\n`,
      ];
      return blocks;
    };
    const spoofed = {
      cookie: "session=abc",
      "x-current-user-id": "mallory",
      "x-current-user-name": "Mallory",
      "x-caller-token": "Bearer forged",
      "x-runner-current-user": "mallory",
      "x-forwarded-user": "mallory",
      "x-forwarded-for": "10.0.0.1",
      "x-ambient-session-token": "forged",
    };
    const r = await post(spoofed);
    expect(r.status).toBe(200);
    const h = runner.requests.at(-1)!.headers;
    expect(h["x-current-user-id"]).toBe("alice");
    expect(h["x-current-user-name"]).toBe("Alice");
    expect(h["x-caller-token"]).toMatch(/^Bearer eyJ/);
    for (const name of ["authorization", "cookie", "x-runner-current-user", "x-forwarded-user", "x-forwarded-for", "x-ambient-session-token"]) expect(h[name]).toBeUndefined();
    // Raw pass-through: every clean block verbatim and in order (CRLF framing kept); the
    // secret-echoing one and the one framed with lone CRs (which @ag-ui/client would split
    // differently) are re-encoded.
    expect(r.text).not.toContain(blocks[1]!);
    expect(r.text).not.toMatch(/\r(?!\n)/);
    let at = 0;
    for (const b of [blocks[0]!, blocks[3]!]) {
      const i = r.text.indexOf(b, at);
      expect(i).toBeGreaterThanOrEqual(0);
      at = i + b.length;
    }
    expect(r.text).not.toContain(GH);
    expect(r.text).toContain("echo [REDACTED]");
    expect(during?.status).toBe(200);
    expect(JSON.parse(during!.body).token).toBe(GH);
    const after = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/remote/credentials/github`, { headers: { authorization: callerToken } });
    expect(after.status).toBe(401);
  });

  test("a runner silent for 20 s: the stream survives (heartbeats meanwhile) and finishes", async () => {
    script = async (input) => [
      frame({ type: "RUN_STARTED", threadId: input.threadId, runId: input.runId }),
      { pause: 20_000 },
      frame({ type: "RUN_FINISHED", threadId: input.threadId, runId: input.runId }),
    ];
    const t0 = Date.now();
    const r = await post();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(19_900);
    expect(r.text).toContain(": heartbeat");
    expect(r.text).toContain('"type":"RUN_FINISHED"');
    expect(r.text).not.toContain("RUN_ERROR");
  }, 40_000);
});
