import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SessionEventLog } from "../../src/sessions/event-log.ts";
import { SessionEventBus } from "../../src/sessions/event-bus.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "turnkey-evlog-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const ev = (i: number) => ({ type: "CUSTOM", name: "n", value: i }) as never;

test("sequence numbers survive a reopen and replay honours afterSeq", () => {
  const dir = tmp();
  const log = new SessionEventLog(dir, 100);
  for (let i = 1; i <= 5; i++) expect(log.append("p", "s", "r1", ev(i))).toBe(i);
  const again = new SessionEventLog(dir, 100);
  expect(again.append("p", "s", "r2", ev(6))).toBe(6);
  expect(again.replay("p", "s", 4).map((r) => r.seq)).toEqual([5, 6]);
  expect(again.replay("p", "other")).toEqual([]);
  expect(statSync(join(dir, "events", "p", "s.jsonl")).mode & 0o777).toBe(0o600);
});

test("retention keeps the newest events and compaction bounds the file", () => {
  const dir = tmp();
  const log = new SessionEventLog(dir, 10);
  for (let i = 1; i <= 35; i++) log.append("p", "s", "r", ev(i));
  const seqs = log.replay("p", "s").map((r) => r.seq);
  expect(seqs).toEqual(Array.from({ length: 10 }, (_, i) => 26 + i));
  const lines = readFileSync(join(dir, "events", "p", "s.jsonl"), "utf8").trim().split("\n").length;
  expect(lines).toBeLessThan(20);
});

test("retention 0 stores nothing but still numbers events", () => {
  const log = new SessionEventLog(tmp(), 0);
  expect(log.append("p", "s", "r", ev(1))).toBe(1);
  expect(log.append("p", "s", "r", ev(2))).toBe(2);
  expect(log.replay("p", "s")).toEqual([]);
});

test("the bus delivers with sequence numbers and survives a throwing listener", () => {
  const bus = new SessionEventBus(new SessionEventLog(tmp(), 10));
  const got: number[] = [];
  bus.subscribe("p", "s", () => {
    throw new Error("bad listener");
  });
  const off = bus.subscribe("p", "s", (_e, m) => got.push(m.seq));
  bus.publish("p", "s", "r", ev(1));
  bus.publish("p", "s", "r", ev(2));
  bus.publish("p", "other", "r", ev(3));
  off();
  bus.publish("p", "s", "r", ev(4));
  expect(got).toEqual([1, 2]);
});
