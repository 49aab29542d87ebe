/**
 * Upstream runner compatibility (issue 3 §3): a long-lived runner that behaves like the upstream
 * platform's (examples/runners/upstream-style.ts) sits behind TURNKEY_RUNNER_URL; it learns the
 * sender only from the headers Turnkey sets and calls back with `X-Caller-Token` verbatim plus
 * `X-Runner-Current-User`. And the runner's own bot token (a `service` principal) reads
 * credentials only for the user of an active run in its session.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runTurn, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { freeLoopbackPort } from "../../src/runner/http-runner.ts";

const UPSTREAM = resolve(import.meta.dir, "../../examples/runners/upstream-style.ts");
const SLOW = resolve(import.meta.dir, "../fixtures/runners/slow.ts");
const ALICE_GH = "ghp_alice_upstream_0000000000000000000";
const BOB_GH = "ghp_bob_upstream_111111111111111111111";
const BOT = "bot-token-for-the-runner-0123456789";
const BOT_ELSEWHERE = "bot-token-of-another-session-0123456789";
const short = (t: string) => createHash("sha256").update(t).digest("hex").slice(0, 12);
const said = (events: any[]) => events.filter((e) => e.type === "TEXT_MESSAGE_CONTENT").map((e) => e.delta).join("");

/** alice owns demo/pair, bob may edit; both store a GitHub token. */
async function seed(gw: TestGateway) {
  const tok = { alice: await gw.token("alice", "Alice"), bob: await gw.token("bob", "Bob") };
  await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: tok.alice, body: { name: "pair" } });
  await gw.api("PUT", "/api/projects/demo/agentic-sessions/pair/collaborators/bob", { token: tok.alice, body: { role: "edit" } });
  await gw.api("PUT", "/api/users/me/credentials/github", { token: tok.alice, body: { token: ALICE_GH } });
  await gw.api("PUT", "/api/users/me/credentials/github", { token: tok.bob, body: { token: BOB_GH } });
  return tok;
}

describe("a long-lived upstream-style runner behind TURNKEY_RUNNER_URL", () => {
  let gw: TestGateway;
  let runner: ReturnType<typeof Bun.spawn>;
  let tok: { alice: string; bob: string };

  beforeAll(async () => {
    const port = await freeLoopbackPort();
    gw = await startGateway({ TURNKEY_RUNNER_URL: `http://127.0.0.1:${port}/` });
    runner = Bun.spawn([process.execPath, UPSTREAM], {
      env: { PATH: process.env.PATH ?? "", PORT: String(port), BACKEND_API_URL: `${gw.url}/api`, PROJECT_NAME: "demo" },
      stdout: "ignore",
      stderr: "ignore",
    });
    tok = await seed(gw);
  });
  afterAll(async () => {
    runner?.kill();
    await gw?.stop();
  });

  test("each turn's runner call-back gets that turn's sender's credential", async () => {
    const b = await runTurn(gw, "demo", "pair", tok.bob); // the gateway retries until the runner listens
    expect(said(b.events)).toBe(`Hello Bob. GitHub token sha256:${short(BOB_GH)}.`);
    await gw.idle();
    const a = await runTurn(gw, "demo", "pair", tok.alice);
    expect(said(a.events)).toBe(`Hello Alice. GitHub token sha256:${short(ALICE_GH)}.`);
    await gw.idle();
    const b2 = await runTurn(gw, "demo", "pair", tok.bob);
    expect(said(b2.events)).toBe(`Hello Bob. GitHub token sha256:${short(BOB_GH)}.`);
    expect(a.text + b.text + b2.text).not.toContain("ghp_");
  });
});

describe("the runner's bot token (service principal)", () => {
  let gw: TestGateway;
  let dir: string;
  let tok: { alice: string; bob: string };
  const path = "/api/projects/demo/agentic-sessions/pair/credentials/github";
  const asBot = (user?: string) => gw.api("GET", path, { token: BOT, ...(user ? { headers: { "X-Runner-Current-User": user } } : {}) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "turnkey-bot-"));
    // Bound to this session; a second runner's token is bound to another session of the project.
    writeFileSync(join(dir, "bots"), `# runner bot tokens\nrunner@demo/pair:${BOT}\nelsewhere@demo/solo:${BOT_ELSEWHERE}\n`, { mode: 0o600 });
    gw = await startGateway({ TURNKEY_RUNNER_COMMAND: JSON.stringify([process.execPath, SLOW]), TURNKEY_RUNNER_BOT_TOKENS_FILE: join(dir, "bots") });
    tok = await seed(gw);
  });
  afterAll(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("allowed only for the user of an active run, never as the owner by default", async () => {
    expect((await asBot("bob")).status).toBe(403); // no turn yet
    const ac = new AbortController();
    const turn = fetch(`${gw.url}/api/projects/demo/agentic-sessions/pair/agui/run`, {
      method: "POST",
      signal: ac.signal,
      headers: { authorization: `Bearer ${tok.bob}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "wait" }] }),
    }).then((r) => r.text()).catch(() => "");
    while (gw.server.deps.activeRuns.size === 0) await Bun.sleep(10);

    const during = await asBot("bob");
    expect(during.status).toBe(200);
    expect(during.body.token).toBe(BOB_GH);
    expect((await asBot("alice")).status).toBe(403); // the owner is not running a turn
    expect((await asBot()).status).toBe(403); // no header → the owner → not active
    expect((await gw.api("GET", "/api/projects/demo/agentic-sessions/other/credentials/github", { token: BOT, headers: { "X-Runner-Current-User": "bob" } })).status).toBe(404);
    // Another session's runner cannot read this session's sender's credentials.
    const foreign = await gw.api("GET", path, { token: BOT_ELSEWHERE, headers: { "X-Runner-Current-User": "bob" } });
    expect(foreign.status).toBe(403);
    expect(JSON.stringify(foreign.body)).not.toContain(BOB_GH);

    ac.abort();
    await turn;
    await gw.idle();
    expect((await asBot("bob")).status).toBe(403);
  });
});
