export {};
/**
 * Benchmark runner: RUN_STARTED, `BURST_EVENTS` text deltas (default from forwardedProps.events,
 * else 0), RUN_FINISHED, as fast as stdout takes them. Each delta carries its send time (epoch ms,
 * fractional) so the reader can compute per-event latency.
 */
const input = JSON.parse(await new Response(Bun.stdin.stream()).text());
const n: number = input.forwardedProps?.events ?? 0;
const out: string[] = [JSON.stringify({ type: "RUN_STARTED", threadId: input.threadId, runId: input.runId })];
const write = (s: string) => process.stdout.write(s + "\n");
write(out[0]!);
if (n > 0) write(JSON.stringify({ type: "TEXT_MESSAGE_START", messageId: "m", role: "assistant" }));
for (let i = 0; i < n; i++) write(JSON.stringify({ type: "TEXT_MESSAGE_CONTENT", messageId: "m", delta: `t=${performance.timeOrigin + performance.now()} ` }));
if (n > 0) write(JSON.stringify({ type: "TEXT_MESSAGE_END", messageId: "m" }));
write(JSON.stringify({ type: "RUN_FINISHED", threadId: input.threadId, runId: input.runId }));
