/**
 * Turn latency through the gateway against the same runner spawned directly, side by side in
 * one run (interleaved, so machine noise hits both alike). Reports p50/p99 in ms and the ratio.
 *
 *   npm run -s bench:turn [-- --turns 40 --events 500]
 *
 * - "start": POST → first byte of RUN_STARTED at the client (gateway) vs spawn → RUN_STARTED line
 *   on stdout (direct). The difference is what Turnkey adds to a turn's start: authentication,
 *   RBAC, active run, turn token, credential resolution (6 providers), turn dir + files, spawn.
 * - "turn": until RUN_FINISHED, with `--events` text deltas in between.
 * - RSS of this process (gateway + client) before and after the second batch, after a full GC.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../../src/config.ts";
import { startServer } from "../../src/server.ts";
import { DevIssuer } from "../../src/identity/dev-issuer.ts";

const { values } = parseArgs({ options: { turns: { type: "string", default: "40" }, events: { type: "string", default: "500" } } });
const TURNS = Number(values.turns);
const EVENTS = Number(values.events);
const RUNNER = [process.execPath, resolve(import.meta.dir, "runners/burst.ts")];

const dataDir = mkdtempSync(join(tmpdir(), "turnkey-bench-"));
const cfg = loadConfig({ TURNKEY_DATA_DIR: dataDir, TURNKEY_PORT: "0", TURNKEY_LOG_LEVEL: "silent", TURNKEY_RUNNER_COMMAND: JSON.stringify(RUNNER), TURNKEY_EVENTS_RETENTION: "0" });
const server = await startServer(cfg);
const token = await (await DevIssuer.open(cfg)).mint({ userId: "bench" });
await fetch(`${server.url}/api/projects/bench/agentic-sessions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ name: "s" }) });
await fetch(`${server.url}/api/users/me/credentials/github`, { method: "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ token: "ghp_bench_token_1234567890" }) });

const input = (runId: string, events: number) => ({ threadId: "s", runId, messages: [{ id: "m", role: "user", content: "go" }], state: {}, tools: [], context: [], forwardedProps: { events } });

/** Read a byte stream until `needle` has been seen `count` times; returns ms of each sighting. */
async function until(stream: ReadableStream<Uint8Array>, t0: number, needles: string[]): Promise<number[]> {
  const dec = new TextDecoder();
  const times: number[] = [];
  let buf = "";
  const reader = stream.getReader();
  while (times.length < needles.length) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    while (times.length < needles.length && buf.includes(needles[times.length]!)) times.push(performance.now() - t0);
  }
  await reader.cancel().catch(() => {});
  return times;
}

async function viaGateway(i: number, events: number): Promise<number[]> {
  const t0 = performance.now();
  const res = await fetch(`${server.url}/api/projects/bench/agentic-sessions/s/agui/run`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify(input(`g${i}-${events}`, events)),
  });
  const t = await until(res.body!, t0, ['"RUN_STARTED"', '"RUN_FINISHED"']);
  // Wait until teardown finished so the next turn is not refused as session_busy.
  while (server.deps.activeRuns.size > 0) await Bun.sleep(1);
  return t;
}

async function direct(i: number, events: number): Promise<number[]> {
  const t0 = performance.now();
  const p = Bun.spawn(RUNNER, { stdin: "pipe", stdout: "pipe", stderr: "ignore", env: { PATH: process.env.PATH ?? "" } });
  p.stdin.write(JSON.stringify(input(`d${i}-${events}`, events)));
  await p.stdin.end();
  const t = await until(p.stdout, t0, ['"RUN_STARTED"', '"RUN_FINISHED"']);
  await p.exited;
  return t;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (x: number) => x.toFixed(1).padStart(7);

async function measure(events: number) {
  const g = { start: [] as number[], turn: [] as number[] };
  const d = { start: [] as number[], turn: [] as number[] };
  await viaGateway(-1, events); // warm-up
  await direct(-1, events);
  for (let i = 0; i < TURNS; i++) {
    const [gs, gt] = await viaGateway(i, events);
    const [ds, dt] = await direct(i, events);
    g.start.push(gs!); g.turn.push(gt!); d.start.push(ds!); d.turn.push(dt!);
  }
  console.log(`\n${events} events per turn, ${TURNS} turns each, interleaved (ms):`);
  console.log("               direct p50  p99 | gateway p50  p99 | ratio p50");
  for (const k of ["start", "turn"] as const)
    console.log(`  ${k.padEnd(6)}     ${fmt(pct(d[k], 50))}${fmt(pct(d[k], 99))} | ${fmt(pct(g[k], 50))}${fmt(pct(g[k], 99))} | ${(pct(g[k], 50) / pct(d[k], 50)).toFixed(2)}x`);
}

console.log(`turnkey turn latency bench: bun ${Bun.version}, ${navigator.hardwareConcurrency} cores`);
await measure(0);
Bun.gc(true);
const before = process.memoryUsage();
await measure(EVENTS);
Bun.gc(true);
const after = process.memoryUsage();
// Gateway and client share this process: JS heap growth across a batch of turns is the leak
// indicator (RSS also moves with the allocator's caching and is shown for scale).
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
console.log(`\nafter ${TURNS + 1} more turns: heap used ${mib(before.heapUsed)} → ${mib(after.heapUsed)}, RSS ${mib(before.rss)} → ${mib(after.rss)}`);
await server.stop();
rmSync(dataDir, { recursive: true, force: true });
