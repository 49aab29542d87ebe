/**
 * End to end, through the real gateway: the live view's limits from the security review —
 * WebSocket messages over TURNKEY_MAX_BODY_BYTES are refused, watchers are capped gateway-wide
 * and per user (and their slots come back however a watcher ends), a watcher's live allowance is
 * 2 MiB, and the `turnkey.v1` subprotocol keeps the bearer token out of the response headers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fixtureRunner as runner, until, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { openSse, openStalled, openWs, upgradeResponseHead } from "../helpers/streams.ts";
import { watcherSlotsFor } from "../../src/http/watch-guard.ts";

const base = "/api/projects/demo/agentic-sessions/limits";

const run = (runId: string, content: string) => ({ type: "run", input: { runId, messages: [{ id: `m-${runId}`, role: "user", content }] } });

describe("live-view limits (max body 4096 B, 4 watchers, 2 per user)", () => {
  let gw: TestGateway;
  const tok: Record<string, string> = {};
  const slots = () => watcherSlotsFor(gw.server.deps.config);

  beforeAll(async () => {
    gw = await startGateway({
      TURNKEY_RUNNER_COMMAND: runner("whoami"),
      TURNKEY_MAX_BODY_BYTES: "4096",
      TURNKEY_MAX_WATCHERS: "4",
      TURNKEY_MAX_WATCHERS_PER_USER: "2",
    });
    for (const u of ["alice", "bob", "carol"]) tok[u] = await gw.token(u);
    await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: tok.alice, body: { name: "limits" } });
    await gw.api("PUT", `${base}/collaborators/bob`, { token: tok.alice, body: { role: "edit" } });
    await gw.api("PUT", `${base}/collaborators/carol`, { token: tok.alice, body: { role: "view" } });
  });
  afterAll(() => gw.stop());

  test("a WebSocket message over max body bytes (as received, UTF-8) gets payload_too_large, is not stored, and the socket stays open; past twice that Bun closes 1009", async () => {
    const sock = await openWs(`${gw.url}${base}/agui/ws`, { token: tok.alice! });
    await until(() => slots().size === 1);
    sock.send(run("big", "x".repeat(5000)));
    expect(await sock.waitFor((e) => e.type === "error")).toMatchObject({ code: "payload_too_large" });
    // 2100 "é" are 2100 characters but 4200 bytes: measured in bytes.
    sock.events.length = 0;
    sock.send(run("wide", "é".repeat(2100)));
    expect(await sock.waitFor((e) => e.type === "error")).toMatchObject({ code: "payload_too_large" });
    sock.send(run("small", "hello"));
    await sock.waitFor((e) => e.type === "RUN_FINISHED" && e.runId === "small");
    await gw.idle();
    const stored = JSON.stringify(gw.server.deps.bus.log?.replay("demo", "limits", 0) ?? []);
    expect(stored).toContain("small");
    expect(stored).not.toContain("xxxxxxxxxx");
    expect(stored).not.toContain("éééééééééé");
    sock.send(run("huge", "x".repeat(9000)));
    expect((await sock.closed).code).toBe(1009);
    await until(() => slots().size === 0);
  });

  test("a WebSocket run gets the same edge checks as POST …/agui/run: a bad run ID or too deep nesting is an error frame and starts nothing", async () => {
    const sock = await openWs(`${gw.url}${base}/agui/ws`, { token: tok.alice! });
    await until(() => slots().size === 1);
    sock.send({ type: "run", input: { runId: "a/b\nc", messages: [{ id: "m", role: "user", content: "hi" }] } });
    expect(await sock.waitFor((e) => e.type === "error")).toMatchObject({ code: "validation_failed" });
    sock.events.length = 0;
    sock.ws.send(`{"type":"run","input":{"messages":[],"state":${"[".repeat(200)}${"]".repeat(200)}}}`);
    expect(await sock.waitFor((e) => e.type === "error")).toMatchObject({ code: "invalid_json" });
    expect(gw.server.deps.activeRuns.size).toBe(0);
    sock.events.length = 0;
    sock.send(run("fine", "hello"));
    await sock.waitFor((e) => e.type === "RUN_FINISHED" && e.runId === "fine");
    sock.close();
    await until(() => slots().size === 0);
    await gw.idle();
  });

  test("watchers beyond the per-user cap and the gateway cap: SSE 429 too_many_watchers, WebSocket 1013; a closed one frees its slot", async () => {
    const a1 = await openSse(`${gw.url}${base}/agui/events`, tok.alice!);
    const a2 = await openWs(`${gw.url}${base}/agui/ws`, { token: tok.alice! });
    await until(() => slots().size === 2);
    const a3 = await gw.api("GET", `${base}/agui/events`, { token: tok.alice, headers: { accept: "text/event-stream" } });
    expect([a1.status, a3.status, a3.body.code]).toEqual([200, 429, "too_many_watchers"]);
    const a4 = await openWs(`${gw.url}${base}/agui/ws`, { token: tok.alice! });
    expect(await a4.closed).toEqual({ code: 1013, reason: "try again later" });

    const b1 = await openSse(`${gw.url}${base}/agui/events`, tok.bob!);
    const b2 = await openWs(`${gw.url}${base}/agui/ws`, { token: tok.bob! });
    await until(() => slots().size === 4);
    const c1 = await openSse(`${gw.url}${base}/agui/events`, tok.carol!);
    expect([b1.status, c1.status]).toEqual([200, 429]);
    const c2 = await openWs(`${gw.url}${base}/agui/ws`, { token: tok.carol! });
    expect((await c2.closed).code).toBe(1013);

    a1.close();
    b2.close();
    await until(() => slots().size === 2);
    const c3 = await openSse(`${gw.url}${base}/agui/events`, tok.carol!);
    const c4 = await openWs(`${gw.url}${base}/agui/ws`, { token: tok.carol! });
    expect(c3.status).toBe(200);
    await until(() => slots().size === 4);
    // Revoked watchers free their slots too.
    expect((await gw.api("DELETE", `${base}/collaborators/carol`, { token: tok.alice })).status).toBe(200);
    expect((await c4.closed).code).toBe(1008);
    await c3.ended;
    await until(() => slots().size === 2);
    await gw.api("PUT", `${base}/collaborators/carol`, { token: tok.alice, body: { role: "view" } });
    a2.close();
    b1.close();
    await until(() => slots().size === 0);
  });

  test("a watcher that never reads is cut after its 2 MiB live allowance (plus socket buffers) and frees its slot", async () => {
    const bus = gw.server.deps.bus;
    const stalled = openStalled(`${gw.url}${base}/agui/events`, tok.alice!);
    await until(() => bus.listenerCount("demo", "limits") === 1 && slots().size === 1);
    const big = "z".repeat(256 * 1024);
    let published = 0;
    while (bus.listenerCount("demo", "limits") > 0 && published < 256) {
      bus.publish("demo", "limits", "r", { type: "CUSTOM", name: "big", value: big } as never);
      published++;
      await Bun.sleep(5);
    }
    expect(bus.listenerCount("demo", "limits")).toBe(0);
    expect(slots().size).toBe(0);
    // 2 MiB = 8 such events queued, plus what the kernel and Bun hold for the socket; the
    // requester's 8 MiB allowance alone would be 32.
    expect(published).toBeLessThan(32);
    expect(await stalled.drainUntil(Buffer.from("client_too_slow"))).toBe(true);
  }, 30_000);

  test("subprotocols: turnkey.v1 is selected when offered, so the token is not echoed; a lone bearer protocol is echoed", async () => {
    const both = await openWs(`${gw.url}${base}/agui/ws`, { protocols: ["turnkey.v1", `bearer.${tok.bob}`] });
    expect(both.ws.protocol).toBe("turnkey.v1");
    both.send(run("proto", "hi"));
    await both.waitFor((e) => e.type === "RUN_FINISHED" && e.runId === "proto");
    both.close();
    await gw.idle();
    const lone = await openWs(`${gw.url}${base}/agui/ws`, { protocolToken: tok.bob! });
    expect(lone.ws.protocol).toBe(`bearer.${tok.bob}`);
    lone.close();

    const head = await upgradeResponseHead(`${gw.url}${base}/agui/ws`, ["turnkey.v1", `bearer.${tok.bob}`]);
    expect(head).toStartWith("HTTP/1.1 101");
    expect(head.toLowerCase()).toContain("sec-websocket-protocol: turnkey.v1");
    expect(head).not.toContain(tok.bob!);
  });
});

test("stopping the gateway releases every watcher slot", async () => {
  const gw = await startGateway({ TURNKEY_RUNNER_COMMAND: runner("whoami") });
  const token = await gw.token("alice");
  await gw.api("POST", "/api/projects/demo/agentic-sessions", { token, body: { name: "limits" } });
  const slots = watcherSlotsFor(gw.server.deps.config);
  const sse = await openSse(`${gw.url}${base}/agui/events`, token);
  const sock = await openWs(`${gw.url}${base}/agui/ws`, { token });
  await until(() => slots.size === 2);
  await gw.stop();
  await until(() => slots.size === 0);
  sse.close();
  sock.close();
});
