/**
 * Bounded buffering (issue 3): a client that stops reading must not make the gateway buffer
 * without bound. The SSE channel (src/http/sse.ts) caps its queue; at the cap it queues one
 * RUN_ERROR `client_too_slow`, closes, and aborts the turn, which closes the runner connection.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { EventType, type BaseEvent } from "@ag-ui/core";
import { CLIENT_TOO_SLOW, createSseChannel } from "../../src/http/sse.ts";
import { RemoteRunnerProxy } from "../../src/runner/remote.ts";
import { makeContext } from "./context.ts";
import { frame, startFakeRunner, type FakeRunner } from "../fixtures/remote/fake-runner.ts";

const text = (i: number) => ({ type: EventType.TEXT_MESSAGE_CONTENT, messageId: "m1", delta: `chunk ${i} ` + "x".repeat(1000) }) as BaseEvent;

describe("SSE channel queue cap", () => {
  test("nobody reads: at the cap the channel ends with RUN_ERROR client_too_slow and calls onOverflow once", async () => {
    let overflows = 0;
    const ch = createSseChannel({ heartbeatMs: 60_000, maxQueuedBytes: 20_000, onOverflow: () => overflows++ });
    let sent = 0;
    while (!ch.closed && sent < 1000) ch.send(text(sent++));
    expect(ch.closed).toBe(true);
    expect(overflows).toBe(1);
    expect(sent).toBeLessThan(25);
    ch.send(text(9999)); // no-op once closed
    // A client that comes back reads what was queued, then the RUN_ERROR, then the end.
    const body = await new Response(ch.stream).text();
    expect(body.length).toBeLessThan(22_000);
    const blocks = body.split("\n\n").filter(Boolean);
    expect(JSON.parse(blocks.at(-1)!.slice(6))).toMatchObject({ type: "RUN_ERROR", code: CLIENT_TOO_SLOW });
    expect(blocks.filter((b) => b.includes("RUN_ERROR"))).toHaveLength(1);
    expect(body).not.toContain("chunk 9999");
  });

  test("a reading client is never cut, and one chunk into an empty queue passes even above the cap", async () => {
    const ch = createSseChannel({ heartbeatMs: 60_000, maxQueuedBytes: 500 });
    const reader = ch.stream.getReader();
    let got = 0;
    for (let i = 0; i < 50; i++) {
      ch.send(text(i));
      got += (await reader.read()).value!.byteLength;
    }
    expect(ch.closed).toBe(false);
    expect(got).toBeGreaterThan(50_000);
    ch.close();
  });
});

describe("a stalled client through a real server and the remote proxy", () => {
  let runner: FakeRunner | undefined;
  afterEach(() => runner?.stop());

  test("the turn is aborted and the runner's connection closed; memory stays near the cap", async () => {
    const ctx0 = makeContext();
    const big = "y".repeat(64 * 1024);
    let runnerSent = 0;
    runner = startFakeRunner(() => {
      const enc = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (runnerSent === 0) c.enqueue(enc.encode(frame({ type: "RUN_STARTED", threadId: ctx0.threadId, runId: ctx0.runId })));
          const chunk = enc.encode(frame({ type: "TEXT_MESSAGE_CONTENT", messageId: "m1", delta: big }));
          runnerSent += chunk.byteLength;
          c.enqueue(chunk);
          await Bun.sleep(1);
        },
      });
      return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
    });
    const proxy = new RemoteRunnerProxy({ urlTemplate: runner.url });
    const abort = new AbortController();
    let outcome: Promise<unknown> | undefined;
    let channelQueuedMax = 0;
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch() {
        const ch = createSseChannel({ heartbeatMs: 60_000, maxQueuedBytes: 1024 * 1024, onCancel: () => abort.abort() });
        outcome = proxy
          .execute({ ...ctx0, signal: abort.signal }, (e, raw) => {
            if (raw) ch.sendRaw(raw);
            else ch.send(e);
            channelQueuedMax = Math.max(channelQueuedMax, ch.queuedBytes);
          })
          .finally(() => ch.close());
        return new Response(ch.stream, { headers: { "Content-Type": "text/event-stream" } });
      },
    });
    try {
      // A client that sends its request and never reads the answer.
      const sock = connect(server.port!, "127.0.0.1");
      sock.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
      sock.pause();
      while (!outcome) await Bun.sleep(10);
      const result = (await Promise.race([outcome!.then(() => "ended"), Bun.sleep(15_000).then(() => "hung")])) as string;
      expect(result).toBe("ended");
      expect(abort.signal.aborted).toBe(true);
      await Promise.race([runner.requests[0]!.closed, Bun.sleep(2000)]);
      expect(runner.requests[0]!.isClosed()).toBe(true);
      expect(channelQueuedMax).toBeLessThanOrEqual(1024 * 1024 + 70 * 1024);
      // The runner could not push much more than the cap plus socket buffers before the turn ended.
      expect(runnerSent).toBeLessThan(32 * 1024 * 1024);
      if (process.env.TURNKEY_TEST_VERBOSE) console.log({ runnerSent, channelQueuedMax });
      sock.destroy();
    } finally {
      server.stop(true);
    }
  }, 30_000);
});
