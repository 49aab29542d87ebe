import { afterEach, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
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

const big = (i: number, kib: number) => ({ type: "CUSTOM", name: "big", value: `${i}:` + "x".repeat(kib * 1024) }) as never;
const file = (dir: string) => join(dir, "events", "p", "s.jsonl");

test("the byte bound: compaction keeps the newest events within both bounds and the file stays under ~2x", () => {
  const dir = tmp();
  const log = new SessionEventLog(dir, 1000, 64 * 1024);
  for (let i = 1; i <= 100; i++) {
    log.append("p", "s", "r", big(i, 10));
    expect(statSync(file(dir)).size).toBeLessThan(2 * 64 * 1024 + 11 * 1024);
  }
  const seqs = log.replay("p", "s").map((r) => r.seq);
  // ~10.1 KiB per line: six fit in 64 KiB, and they are the newest six.
  expect(seqs).toEqual([95, 96, 97, 98, 99, 100]);
  expect(log.replay("p", "s", 98).map((r) => r.seq)).toEqual([99, 100]);
  expect(log.replay("p", "s", 100)).toEqual([]);
  // The count bound still applies under the byte bound.
  const few = new SessionEventLog(tmp(), 3, 64 * 1024);
  for (let i = 1; i <= 10; i++) few.append("p", "s", "r", ev(i));
  expect(few.replay("p", "s").map((r) => r.seq)).toEqual([8, 9, 10]);
});

test("an oversized file from before the byte bound is compacted on open, reading only its tail; seq continues", () => {
  const dir = tmp();
  const old = new SessionEventLog(dir, 100_000, 100 * 1024 * 1024);
  for (let i = 1; i <= 200; i++) old.append("p", "s", "r", big(i, 10)); // ~2 MB
  expect(statSync(file(dir)).size).toBeGreaterThan(2_000_000);
  const log = new SessionEventLog(dir, 100_000, 32 * 1024);
  expect(log.lastSeq("p", "s")).toBe(200);
  expect(statSync(file(dir)).size).toBeLessThanOrEqual(32 * 1024);
  expect(log.replay("p", "s").map((r) => r.seq)).toEqual([198, 199, 200]);
  expect(log.append("p", "s", "r", ev(201))).toBe(201);
});

test("replay never returns more than the byte bound, even before compaction, and skips a torn line", () => {
  const dir = tmp();
  const log = new SessionEventLog(dir, 1000, 50 * 1024);
  for (let i = 1; i <= 9; i++) log.append("p", "s", "r", big(i, 10)); // ~91 KiB, under the 2x trigger
  const replayed = log.replay("p", "s");
  const bytes = replayed.reduce((n, r) => n + JSON.stringify(r).length + 1, 0);
  expect(bytes).toBeLessThanOrEqual(50 * 1024);
  expect(replayed.map((r) => r.seq)).toEqual([6, 7, 8, 9]);
  // A crash tore the last line: it is skipped, and the next append starts on a fresh line.
  appendFileSync(file(dir), '{"seq":10,"runId":"r","ti');
  const again = new SessionEventLog(dir, 1000, 50 * 1024);
  expect(again.append("p", "s", "r", ev(10))).toBe(10);
  expect(again.replay("p", "s", 8).map((r) => r.seq)).toEqual([9, 10]);
});

test("byte bound 0 stores nothing; an event larger than the bound is live-only", () => {
  const dir = tmp();
  const none = new SessionEventLog(dir, 100, 0);
  expect(none.append("p", "s", "r", ev(1))).toBe(1);
  expect(none.replay("p", "s")).toEqual([]);
  const small = new SessionEventLog(tmp(), 100, 4 * 1024);
  small.append("p", "s", "r", ev(1));
  small.append("p", "s", "r", big(2, 8));
  small.append("p", "s", "r", ev(3));
  expect(small.replay("p", "s").map((r) => r.seq)).toEqual([3]);
});

test("currentSeq and the membership channel: never numbered, stored or delivered as an event", () => {
  const dir = tmp();
  const bus = new SessionEventBus(new SessionEventLog(dir, 10));
  const events: unknown[] = [];
  bus.subscribe("p", "s", (e) => events.push(e));
  let changes = 0;
  const off = bus.onMembershipChange("p", "s", () => changes++);
  bus.onMembershipChange("p", "other", () => changes += 100);
  expect(bus.currentSeq("p", "s")).toBe(0);
  bus.publish("p", "s", "r", ev(1));
  expect(bus.membershipVersion("p", "s")).toBe(0);
  bus.membershipChanged("p", "s");
  bus.membershipChanged("p", "s");
  off();
  bus.membershipChanged("p", "s");
  expect(changes).toBe(2);
  expect(bus.membershipVersion("p", "s")).toBe(3);
  expect(events).toHaveLength(1);
  expect(bus.currentSeq("p", "s")).toBe(1);
  expect(readFileSync(join(dir, "events", "p", "s.jsonl"), "utf8").trim().split("\n")).toHaveLength(1);
  expect(bus.listenerCount("p", "s")).toBe(1);
  // A new process sees the stored sequence.
  expect(new SessionEventBus(new SessionEventLog(dir, 10)).currentSeq("p", "s")).toBe(1);
});

test("stored events belong to one incarnation of a session: a re-created session starts empty", () => {
  const dir = tmp();
  const log = new SessionEventLog(dir, 100);
  expect(log.bindIncarnation("p", "s", "uid-1")).toBe(false); // nothing stored yet
  for (let i = 1; i <= 3; i++) log.append("p", "s", "r", ev(i));
  expect(log.bindIncarnation("p", "s", "uid-1")).toBe(false);
  // A restart keeps the same incarnation's events.
  const again = new SessionEventLog(dir, 100);
  expect(again.bindIncarnation("p", "s", "uid-1")).toBe(false);
  expect(again.replay("p", "s").map((r) => r.seq)).toEqual([1, 2, 3]);
  // Deleted and created again under the same name: the old events are gone, numbering restarts.
  expect(again.bindIncarnation("p", "s", "uid-2")).toBe(true);
  expect(again.replay("p", "s")).toEqual([]);
  expect(again.append("p", "s", "r", ev(9))).toBe(1);
  expect(statSync(join(dir, "events", "p", "s.id")).mode & 0o777).toBe(0o600);
  // A log with no incarnation recorded (written before it existed) is not trusted either.
  const legacy = new SessionEventLog(tmp(), 100);
  legacy.append("p", "old", "r", ev(1));
  expect(legacy.bindIncarnation("p", "old", "uid-3")).toBe(true);
  expect(legacy.replay("p", "old")).toEqual([]);
});

test("the bus restarts its own numbering when the incarnation changes", () => {
  const bus = new SessionEventBus(); // no log: numbering lives in the bus
  bus.bindIncarnation("p", "s", "a");
  bus.publish("p", "s", "r", ev(1));
  bus.publish("p", "s", "r", ev(2));
  expect(bus.currentSeq("p", "s")).toBe(2);
  bus.bindIncarnation("p", "s", "a");
  expect(bus.currentSeq("p", "s")).toBe(2);
  bus.bindIncarnation("p", "s", "b");
  expect(bus.currentSeq("p", "s")).toBe(0);
});
