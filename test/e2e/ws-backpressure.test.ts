/**
 * End to end: backpressure for turns started over the WebSocket (src/http/flow.ts), as for the
 * SSE requester (teardown.test.ts). A raw-TCP WebSocket client controls how fast it reads:
 * a slow reader slows the runner down and still gets the whole turn; a client that stops reading
 * ends its turn with `client_too_slow` after TURNKEY_CLIENT_STALL_MS, with teardown, instead of
 * the gateway buffering the runner's output.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fixtureRunner as runner, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { openRawWs } from "../helpers/streams.ts";

const base = "/api/projects/demo/agentic-sessions/flow";
const run = (runId: string, events: number) => ({ type: "run", input: { runId, messages: [{ id: `m-${runId}`, role: "user", content: "flood" }], forwardedProps: { fixture: { events } } } });

describe("WebSocket-started turns get backpressure", () => {
  let gw: TestGateway;
  let alice: string;
  beforeAll(async () => {
    gw = await startGateway({ TURNKEY_RUNNER_COMMAND: runner("flood"), TURNKEY_EVENTS_RETENTION: "0", TURNKEY_CLIENT_STALL_MS: "3000" });
    alice = await gw.token("alice");
    await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: alice, body: { name: "flow" } });
  });
  afterAll(() => gw.stop());

  test("a client that reads slowly gets all of a 20 MiB turn: the runner waits instead of the socket being cut at 8 MiB", async () => {
    const ws = await openRawWs(`${gw.url}${base}/agui/ws`, alice);
    try {
      ws.send(run("slow", 80)); // 80 × 256 KiB
      const got = await ws.read({ delayMs: 20, stop: (type) => type === "RUN_FINISHED" || type === "RUN_ERROR" });
      expect(got.closeCode).toBeUndefined();
      expect(got.types.at(-1)).toBe("RUN_FINISHED");
      expect(got.types.filter((t) => t === "TEXT_MESSAGE_CONTENT")).toHaveLength(80);
      expect(got.bytes).toBeGreaterThan(20 * 1024 * 1024);
    } finally {
      ws.close();
    }
    await gw.idle();
  }, 60_000);

  test("a client that stops reading: its turn ends with client_too_slow after the stall time and is torn down; the runner was held back", async () => {
    const seen: { type: string; code?: string }[] = [];
    const off = gw.server.deps.bus.subscribe("demo", "flow", (e) => {
      const ev = e as { type: string; code?: string };
      seen.push({ type: ev.type, ...(ev.code ? { code: ev.code } : {}) });
    });
    const ws = await openRawWs(`${gw.url}${base}/agui/ws`, alice);
    try {
      ws.send(run("stalled", 400)); // 100 MiB if nothing held the runner back
      const end = Date.now() + 20_000;
      while (!seen.some((e) => e.type === "RUN_ERROR") && Date.now() < end) await Bun.sleep(20);
      expect(seen.at(-1)).toEqual({ type: "RUN_ERROR", code: "client_too_slow" });
      // Paused at about 1 MiB in Bun's buffer plus what the kernel holds: nowhere near 400 deltas.
      expect(seen.filter((e) => e.type === "TEXT_MESSAGE_CONTENT").length).toBeLessThan(120);
      await gw.idle();
      expect(gw.server.deps.activeRuns.size).toBe(0);
    } finally {
      off();
      ws.close();
    }
  }, 60_000);
});
