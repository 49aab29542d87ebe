/**
 * Added latency per event through the remote-runner proxy (issue 3): one loopback runner streams
 * `--events` CUSTOM events, each stamped with its send time, 1 ms apart; the client reads them
 * once directly from the runner and once through the gateway (TURNKEY_RUNNER_URL), alternating
 * for `--rounds` rounds in the same process, so both see the same machine. Reports p50/p99 of
 * (receive time − send time) in ms and the gateway's added latency.
 *
 *   npm run -s bench:proxy [-- --events 2000 --rounds 3]
 */
import { parseArgs } from "node:util";
import { startGateway } from "../../test/helpers/gateway.ts";

const { values } = parseArgs({ options: { events: { type: "string", default: "2000" }, rounds: { type: "string", default: "3" } } });
const N = Number(values.events);
const ROUNDS = Number(values.rounds);
const enc = new TextEncoder();
const frame = (e: object) => enc.encode(`data: ${JSON.stringify(e)}\n\n`);

const runner = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  async fetch(req) {
    const input = (await req.json()) as { threadId: string; runId: string };
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(frame({ type: "RUN_STARTED", threadId: input.threadId, runId: input.runId }));
        for (let i = 0; i < N; i++) {
          await Bun.sleep(1);
          c.enqueue(frame({ type: "CUSTOM", name: "t", value: performance.now() }));
        }
        c.enqueue(frame({ type: "RUN_FINISHED", threadId: input.threadId, runId: input.runId }));
        c.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  },
});

/** Latencies (ms) of every CUSTOM event of one run read from `url`. */
async function measure(url: string, headers: Record<string, string>): Promise<number[]> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", ...headers },
    body: JSON.stringify({ threadId: "t", runId: crypto.randomUUID(), messages: [] }),
  });
  const lat: number[] = [];
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of res.body!) {
    const now = performance.now();
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const m = /^data: (.*)$/m.exec(block);
      if (!m) continue;
      const e = JSON.parse(m[1]!) as { type: string; value: number };
      if (e.type === "CUSTOM") lat.push(now - e.value);
    }
  }
  return lat;
}

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const gw = await startGateway({ TURNKEY_RUNNER_URL: `http://127.0.0.1:${runner.port}/`, TURNKEY_EVENTS_RETENTION: "0" });
const tok = await gw.token("alice", "Alice");
await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: tok, body: { name: "bench" } });
console.log(`turnkey proxy latency bench: bun ${Bun.version}, ${N} events per run, ${ROUNDS} rounds, alternating (ms)`);
console.log("round | direct p50    p99 | gateway p50    p99 | added p50   p99");
const all = { d: [] as number[], g: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  const d = await measure(`http://127.0.0.1:${runner.port}/`, {});
  const g = await measure(`${gw.url}/api/projects/demo/agentic-sessions/bench/agui/run`, { authorization: `Bearer ${tok}` });
  all.d.push(...d);
  all.g.push(...g);
  const f = (x: number) => x.toFixed(3).padStart(7);
  console.log(`${String(r + 1).padStart(5)} | ${f(q(d, 0.5))}${f(q(d, 0.99))} | ${f(q(g, 0.5))}${f(q(g, 0.99))} | ${f(q(g, 0.5) - q(d, 0.5))}${f(q(g, 0.99) - q(d, 0.99))}`);
}
console.log(`  all | direct p50 ${q(all.d, 0.5).toFixed(3)} p99 ${q(all.d, 0.99).toFixed(3)} | gateway p50 ${q(all.g, 0.5).toFixed(3)} p99 ${q(all.g, 0.99).toFixed(3)}`);
await gw.stop();
runner.stop(true);
