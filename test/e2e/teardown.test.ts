/**
 * End to end, issue 2 §8 and DESIGN §7 rule 2: teardown happens on every path (success with a
 * lingering grandchild, runner crash, client abort, concurrency refusal) through the real gateway.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fixtureRunner as runner, startGateway, runTurn, parseSse, type TestGateway } from "../helpers/gateway.ts";
import { openSse } from "../helpers/streams.ts";
import { processGroupAlive } from "../../src/runner/process-group.ts";


/** A gateway with alice's session `s` and a GitHub credential, running `fixture`. */
async function setup(fixture: string, env: Record<string, string> = {}) {
  const gw = await startGateway({ TURNKEY_RUNNER_COMMAND: runner(fixture), ...env });
  const alice = await gw.token("alice", "Alice");
  await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: alice, body: { name: "s" } });
  await gw.api("PUT", "/api/users/me/credentials/github", { token: alice, body: { token: "ghp_teardown_secret_123456789" } });
  return { gw, alice };
}

/** `gone`, or the one-letter state from /proc/<pid>/stat (R, S, Z, ...). */
function processState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0]!;
  } catch {
    return "gone";
  }
}

async function waitFor(cond: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await Bun.sleep(20);
  }
  return true;
}

describe("teardown", () => {
  const gateways: TestGateway[] = [];
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
  });

  test("a background grandchild of the runner does not outlive the turn", async () => {
    const { gw, alice } = await setup("grandchild");
    gateways.push(gw);
    const r = await runTurn(gw, "demo", "s", alice);
    const info = r.events.find((e) => e.name === "grandchild")?.value;
    expect(info.pid).toBeGreaterThan(0);
    expect(r.events.at(-1).type).toBe("RUN_FINISHED");
    expect(processGroupAlive(info.pgid)).toBe(false);
    // Killed: gone, or a zombie waiting for PID 1 to reap it (no tini in this sandbox).
    expect(processState(info.pid)).toBeOneOf(["gone", "Z"]);
    expect(gw.server.deps.activeRuns.size).toBe(0);
  });

  test("a runner that crashes: the client gets RUN_ERROR and the next turn can start", async () => {
    const { gw, alice } = await setup("crash");
    gateways.push(gw);
    const r = await runTurn(gw, "demo", "s", alice);
    expect(r.events[0].type).toBe("RUN_STARTED");
    const last = r.events.at(-1);
    expect(last.type).toBe("RUN_ERROR");
    expect(last.code).toBe("runner_exited");
    expect(r.text).not.toContain("ghp_teardown_secret_123456789");
    expect(gw.server.deps.activeRuns.size).toBe(0);
    expect((await runTurn(gw, "demo", "s", alice)).status).toBe(200);
  });

  test("a client that aborts mid-turn: the runner's process group is killed and the run cleared", async () => {
    const { gw, alice } = await setup("slow");
    gateways.push(gw);
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/s/agui/run`, {
      method: "POST",
      signal: ac.signal,
      headers: { authorization: `Bearer ${alice}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "wait" }] }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = "";
    let slow: any;
    while (!slow) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      slow = parseSse(text).find((e) => e.name === "slow")?.value;
    }
    expect(slow.pgid).toBeGreaterThan(0);
    expect(gw.server.deps.activeRuns.size).toBe(1);
    // A second turn while this one runs is refused.
    const busy = await runTurn(gw, "demo", "s", alice);
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe("session_busy");

    ac.abort();
    expect(await waitFor(() => !processGroupAlive(slow.pgid))).toBe(true);
    expect(await waitFor(() => gw.server.deps.activeRuns.size === 0)).toBe(true);
  });

  test("the turn deadline ends a runaway turn with RUN_ERROR and tears it down", async () => {
    const { gw, alice } = await setup("slow", { TURNKEY_TURN_TIMEOUT_MS: "1500" });
    gateways.push(gw);
    const r = await runTurn(gw, "demo", "s", alice);
    const slow = r.events.find((e) => e.name === "slow")?.value;
    expect(r.events.at(-1).type).toBe("RUN_ERROR");
    expect(processGroupAlive(slow.pgid)).toBe(false);
    expect(gw.server.deps.activeRuns.size).toBe(0);
  });

  test("the runner inherits nothing of the gateway's environment", async () => {
    process.env.TURNKEY_LEAK_MARKER = "gateway-only-value";
    try {
      const { gw, alice } = await setup("leak-check", { TURNKEY_MASTER_KEY: "q".repeat(43) });
      gateways.push(gw);
      const r = await runTurn(gw, "demo", "s", alice);
      const report = r.events.find((e) => e.name === "leak-check")?.value;
      expect(report.leaked).toEqual([]);
      expect(report.envNames).not.toContain("TURNKEY_LEAK_MARKER");
    } finally {
      delete process.env.TURNKEY_LEAK_MARKER;
    }
  });

  test("gateway shutdown ends live turns with teardown", async () => {
    const { gw, alice } = await setup("slow");
    const res = fetch(`${gw.url}/api/projects/demo/agentic-sessions/s/agui/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "wait" }] }),
    }).then((r) => r.text()).catch(() => "");
    expect(await waitFor(() => gw.server.deps.activeRuns.size === 1)).toBe(true);
    await gw.stop();
    expect(gw.server.deps.activeRuns.size).toBe(0);
    const events = parseSse(await res);
    const slow = events.find((e) => e.name === "slow")?.value;
    if (slow) expect(processGroupAlive(slow.pgid)).toBe(false);
    expect(events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "gateway_shutdown" });
  });

  test("a client that stops reading is cut off: watchers see RUN_ERROR client_too_slow last, and teardown happens", async () => {
    const { gw, alice } = await setup("flood", { TURNKEY_EVENTS_RETENTION: "0", TURNKEY_CLIENT_STALL_MS: "1000" });
    gateways.push(gw);
    const watcher = await openSse(`${gw.url}/api/projects/demo/agentic-sessions/s/agui/events`, alice);
    const res = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/s/agui/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "flood" }] }),
    });
    expect(res.status).toBe(200); // ...and never read the body
    const last = await watcher.waitFor((e) => e.type === "RUN_ERROR" || e.type === "RUN_FINISHED", 30_000);
    expect(last).toMatchObject({ type: "RUN_ERROR", code: "client_too_slow" });
    await Bun.sleep(100);
    expect(watcher.events.at(-1)).toBe(last); // nothing after the terminal event
    expect(await waitFor(() => gw.server.deps.activeRuns.size === 0, 10_000)).toBe(true);
    watcher.close();
    await res.body?.cancel();
  });

  test("a client that reads slowly slows the runner down instead of being cut off", async () => {
    const { gw, alice } = await setup("flood", { TURNKEY_EVENTS_RETENTION: "0", TURNKEY_CLIENT_STALL_MS: "5000" });
    gateways.push(gw);
    // 80 × 256 KiB = 20 MiB, far past the 8 MiB queue cap if the runner were not held back.
    const res = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/s/agui/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "flood" }], forwardedProps: { fixture: { events: 80 } } }),
    });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let tail = "";
    let bytes = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      tail = (tail + dec.decode(value, { stream: true })).slice(-4096);
      await Bun.sleep(2); // a reader slower than the runner
    }
    expect(bytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(tail).toContain('"RUN_FINISHED"');
    expect(tail).not.toContain("client_too_slow");
  });

  test("shutdown while a slow client still has queued output: the client still gets gateway_shutdown last", async () => {
    const { gw, alice } = await setup("flood");
    const res = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/s/agui/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "flood" }] }),
    });
    await Bun.sleep(300); // not reading: output queues up and the runner is paused
    const stopping = gw.stop();
    // Now read everything that was queued, slowly, as a client on a slow link would.
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
      await Bun.sleep(5);
    }
    await stopping;
    const last = parseSse(text.slice(text.lastIndexOf("data: "))).at(-1);
    expect(last).toMatchObject({ type: "RUN_ERROR", code: "gateway_shutdown" });
  });

  test("an HTTP runner that dies while its stream is paused for a slow client ends the turn at once", async () => {
    const fixture = resolve(import.meta.dir, "../fixtures/remote/http-runner.ts");
    const { gw, alice } = await setup("flood", {
      TURNKEY_RUNNER_PROTOCOL: "http",
      TURNKEY_RUNNER_COMMAND: JSON.stringify([process.execPath, fixture]),
      TURNKEY_CLIENT_STALL_MS: "30000",
    });
    gateways.push(gw);
    const res = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/s/agui/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "x" }], forwardedProps: { fixture: { mode: "flood-exit" } } }),
    });
    expect(res.status).toBe(200); // never read: the relay pauses on backpressure
    const t0 = Date.now();
    expect(await waitFor(() => gw.server.deps.activeRuns.size === 0, 10_000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(10_000); // not the 30 s stall cut-off
    await res.body?.cancel();
  });
});
