import { expect, test } from "bun:test";
import { waitUntil } from "../../src/runner/wait.ts";

test("waitUntil resolves after the time, or at once on an abort (already aborted too)", async () => {
  const t0 = performance.now();
  await waitUntil(30, []);
  expect(performance.now() - t0).toBeGreaterThanOrEqual(25);

  const a = new AbortController();
  const p = waitUntil(Infinity, [new AbortController().signal, a.signal]);
  a.abort();
  await p;

  const t1 = performance.now();
  await waitUntil(10_000, [AbortSignal.abort()]);
  expect(performance.now() - t1).toBeLessThan(1000);

});
