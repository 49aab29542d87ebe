/**
 * End to end, issue 3 §4-§7: every participant watches the same conversation live (SSE and
 * WebSocket), nothing secret leaks to watchers, interrupts end turns, and authorisation is
 * re-checked for every turn on a long-lived connection.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { startGateway, runTurn, type TestGateway } from "../helpers/gateway.ts";
import { openSse, openWs } from "../helpers/streams.ts";
import { processGroupAlive } from "../../src/runner/process-group.ts";

const runner = (name: string) => JSON.stringify([process.execPath, resolve(import.meta.dir, `../fixtures/runners/${name}.ts`)]);
const BOB_GH = "ghp_bob_live_22222222222222222222222222";
const base = "/api/projects/demo/agentic-sessions/live";

describe("live view for every participant", () => {
  let gw: TestGateway;
  const tok: Record<string, string> = {};

  beforeAll(async () => {
    gw = await startGateway({ TURNKEY_RUNNER_COMMAND: runner("whoami") });
    for (const u of ["alice", "bob", "carol", "dave"]) tok[u] = await gw.token(u, u.toUpperCase());
    await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: tok.alice, body: { name: "live" } });
    await gw.api("PUT", `${base}/collaborators/bob`, { token: tok.alice, body: { role: "edit" } });
    await gw.api("PUT", `${base}/collaborators/carol`, { token: tok.alice, body: { role: "view" } });
    await gw.api("PUT", "/api/users/me/credentials/github", { token: tok.bob, body: { token: BOB_GH } });
  });
  afterAll(() => gw.stop());

  test("owner and view collaborator watch bob's turn, with his token redacted; a stranger gets 403", async () => {
    const alice = await openSse(`${gw.url}${base}/agui/events`, tok.alice!);
    const carol = await openSse(`${gw.url}${base}/agui/events`, tok.carol!);
    expect([alice.status, carol.status]).toEqual([200, 200]);
    expect((await openSse(`${gw.url}${base}/agui/events`, tok.dave!)).status).toBe(403);

    const turn = await runTurn(gw, "demo", "live", tok.bob!, { forwardedProps: { fixture: { echoToken: true } } });
    expect(turn.status).toBe(200);
    const runId = turn.events[0].runId;
    for (const w of [alice, carol]) {
      await w.waitFor((e) => e.type === "RUN_FINISHED" && e.runId === runId);
      const text = w.events.filter((e) => e.type === "TEXT_MESSAGE_CONTENT").map((e) => e.delta).join("");
      expect(text).toContain("my token is [REDACTED]");
      expect(JSON.stringify(w.events)).not.toContain(BOB_GH);
      // The sender is stamped on the user message, for everyone.
      const snap = await w.waitFor((e) => e.type === "MESSAGES_SNAPSHOT");
      expect(snap.messages[0].metadata).toMatchObject({ senderId: "bob", senderDisplayName: "BOB" });
      w.close();
    }
  });

  test("a client cannot claim another sender", async () => {
    const r = await runTurn(gw, "demo", "live", tok.bob!, {
      messages: [{ id: "m1", role: "user", content: "hi", metadata: { senderId: "alice", senderDisplayName: "ALICE", topic: "kept" } }],
    });
    const snap = r.events.find((e) => e.type === "MESSAGES_SNAPSHOT");
    expect(snap.messages[0].metadata).toEqual({ senderId: "bob", senderDisplayName: "BOB", topic: "kept" });
  });

  test("a late watcher replays stored events; Last-Event-ID resumes after what it saw", async () => {
    const r = await runTurn(gw, "demo", "live", tok.bob!);
    const runId = r.events[0].runId;
    await gw.idle();
    const late = await openSse(`${gw.url}${base}/agui/events`, tok.carol!);
    await late.waitFor((e) => e.type === "RUN_FINISHED" && e.runId === runId);
    const lastSeen = late.ids.at(-1)!;
    late.close();
    const resumed = await openSse(`${gw.url}${base}/agui/events`, tok.carol!, { "last-event-id": String(lastSeen) });
    const next = await runTurn(gw, "demo", "live", tok.bob!);
    await resumed.waitFor((e) => e.type === "RUN_FINISHED" && e.runId === next.events[0].runId);
    expect(resumed.ids[0]).toBe(lastSeen + 1);
    expect(resumed.events.some((e) => e.runId === runId)).toBe(false);
    resumed.close();
  });

  test("without Accept: text/event-stream a run answers 202 and is visible on the events stream", async () => {
    const w = await openSse(`${gw.url}${base}/agui/events`, tok.alice!);
    const r = await gw.api("POST", `${base}/agui/run`, { token: tok.bob, body: { messages: [{ id: "m", role: "user", content: "bg" }] } });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ runId: expect.any(String), threadId: "live" });
    await w.waitFor((e) => e.type === "RUN_FINISHED" && e.runId === r.body.runId);
    w.close();
    await gw.idle();
  });

  test("capabilities of the local runner", async () => {
    const r = await gw.api("GET", `${base}/agui/capabilities`, { token: tok.carol });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ framework: expect.any(String), agent_features: expect.any(Array), mcp: false });
    expect((await gw.api("GET", `${base}/agui/capabilities`, { token: tok.dave })).status).toBe(403);
  });

  test("WebSocket: run, receive events, revoke the collaborator, next run refused; bad token → 1008", async () => {
    const sock = await openWs(`${gw.url}${base}/agui/ws`, { protocolToken: tok.bob! });
    expect(sock.ws.protocol).toBe(`bearer.${tok.bob}`);
    await gw.idle();
    sock.send({ type: "run", input: { runId: "ws-run-1", messages: [{ id: "m", role: "user", content: "over ws" }] } });
    const done = await sock.waitFor((e) => e.type === "RUN_FINISHED" && e.runId === "ws-run-1");
    expect(done).toBeDefined();
    await gw.idle();
    expect(sock.events.find((e) => e.type === "CUSTOM" && e.name === "whoami").value.user).toBe("bob");

    sock.send({ type: "nonsense" });
    expect((await sock.waitFor((e) => e.type === "error")).code).toBe("bad_request");

    expect((await gw.api("DELETE", `${base}/collaborators/bob`, { token: tok.alice })).status).toBe(200);
    sock.send({ type: "run", input: { runId: "ws-run-2", messages: [{ id: "m", role: "user", content: "again" }] } });
    expect((await sock.closed).code).toBe(1008);
    expect(sock.events.some((e) => e.runId === "ws-run-2")).toBe(false);
    await gw.api("PUT", `${base}/collaborators/bob`, { token: tok.alice, body: { role: "edit" } });

    const bad = await openWs(`${gw.url}${base}/agui/ws`, { token: "not-a-token" });
    expect((await bad.closed).code).toBe(1008);
    const stranger = await openWs(`${gw.url}${base}/agui/ws`, { token: tok.dave! });
    expect((await stranger.closed).code).toBe(1008);
  });

  test("WebSocket: a view collaborator watches but cannot run", async () => {
    await gw.idle();
    const sock = await openWs(`${gw.url}${base}/agui/ws`, { token: tok.carol! });
    sock.send({ type: "run", input: { messages: [{ id: "m", role: "user", content: "x" }] } });
    expect((await sock.waitFor((e) => e.type === "error")).code).toBe("forbidden");
    const r = await runTurn(gw, "demo", "live", tok.bob!);
    await sock.waitFor((e) => e.type === "RUN_FINISHED" && e.runId === r.events[0].runId);
    sock.close();
  });
});

describe("interrupt", () => {
  let gw: TestGateway;
  let alice: string;
  beforeAll(async () => {
    gw = await startGateway({ TURNKEY_RUNNER_COMMAND: runner("slow") });
    alice = await gw.token("alice");
    await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: alice, body: { name: "live" } });
  });
  afterAll(() => gw.stop());

  test("SIGINT to the runner's group ends the turn with a terminal event, then teardown", async () => {
    const w = await openSse(`${gw.url}${base}/agui/events`, alice);
    const turn = runTurn(gw, "demo", "live", alice);
    const slow = await w.waitFor((e) => e.type === "CUSTOM" && e.name === "slow");
    const r = await gw.api("POST", `${base}/agui/interrupt`, { token: alice, body: {} });
    expect(r.status).toBe(202);
    const events = (await turn).events;
    expect(["RUN_FINISHED", "RUN_ERROR"]).toContain(events.at(-1).type);
    expect(processGroupAlive(slow.value.pgid)).toBe(false);
    expect(gw.server.deps.activeRuns.size).toBe(0);
    expect((await gw.api("POST", `${base}/agui/interrupt`, { token: alice, body: {} })).status).toBe(404);
    w.close();
  });

  test("a runner that ignores SIGINT is ended after the grace period", async () => {
    const turn = runTurn(gw, "demo", "live", alice, { forwardedProps: { fixture: { onSigint: "ignore" } } });
    while (gw.server.deps.activeRuns.size === 0) await Bun.sleep(20);
    await Bun.sleep(200);
    expect((await gw.api("POST", `${base}/agui/interrupt`, { token: alice })).status).toBe(202);
    const events = (await turn).events;
    expect(events.at(-1).type).toBe("RUN_ERROR");
    expect(gw.server.deps.activeRuns.size).toBe(0);
  });
});

describe("back-to-back turns", () => {
  test("a turn sent the moment a watcher sees RUN_FINISHED waits for teardown instead of 409", async () => {
    // The runner lingers after RUN_FINISHED and ignores SIGTERM: each teardown takes the 1 s grace.
    const gw = await startGateway({ TURNKEY_RUNNER_COMMAND: runner("linger") });
    try {
      const alice = await gw.token("alice");
      await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: alice, body: { name: "live" } });
      const sock = await openWs(`${gw.url}${base}/agui/ws`, { token: alice });
      for (let i = 0; i < 3; i++) {
        sock.send({ type: "run", input: { runId: `b2b-${i}`, messages: [{ id: "m", role: "user", content: "x" }] } });
        await sock.waitFor((e) => (e.type === "RUN_FINISHED" || e.type === "error") && (e.runId === `b2b-${i}` || e.type === "error"));
      }
      expect(sock.events.filter((e) => e.type === "error")).toEqual([]);
      expect(sock.events.filter((e) => e.type === "RUN_FINISHED")).toHaveLength(3);
      sock.close();
    } finally {
      await gw.stop();
    }
  });
});
