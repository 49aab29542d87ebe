/**
 * Live-view limits, one row per case: which WebSocket subprotocol the server selects, how a
 * message is measured, and when a watcher is admitted (src/http/routes/agui-ws.ts,
 * src/http/watch-guard.ts `WatcherSlots`).
 */
import { describe, expect, test } from "bun:test";
import { messageBytes, selectSubprotocol } from "../../src/http/routes/agui-ws.ts";
import { WatcherSlots } from "../../src/http/watch-guard.ts";

describe("selectSubprotocol(offered)", () => {
  const rows: [string | null, string | undefined][] = [
    [null, undefined],
    ["", undefined],
    ["turnkey.v1", "turnkey.v1"],
    ["turnkey.v1, bearer.abc", "turnkey.v1"],
    ["bearer.abc, turnkey.v1", "turnkey.v1"],
    ["bearer.abc", "bearer.abc"], // alone: a browser needs an offered protocol back
    [" bearer.abc ", "bearer.abc"],
    ["chat, bearer.abc", undefined], // never echo the token beside another protocol
    ["bearer.", undefined],
    ["chat", undefined],
    ["turnkey.v2, bearer.abc", undefined],
  ];
  for (const [offered, expected] of rows)
    test(`${JSON.stringify(offered)} → ${expected}`, () => expect(selectSubprotocol(offered)).toBe(expected));
});

describe("messageBytes(message)", () => {
  const rows: [string, string | Uint8Array, number][] = [
    ["ascii text", "abc", 3],
    ["multi-byte text counts UTF-8 bytes, not characters", "é€😀", 2 + 3 + 4],
    ["binary", new Uint8Array(7), 7],
  ];
  for (const [name, message, expected] of rows) test(name, () => expect(messageBytes(message)).toBe(expected));
});

describe("WatcherSlots (3 per gateway, 2 per user)", () => {
  test("admits up to each cap, refuses beyond, and a release (once, however often called) frees the slot", () => {
    const slots = new WatcherSlots({ maxWatchers: 3, maxWatchersPerUser: 2 });
    const steps: [string, "ok" | "user" | "gateway"][] = [
      ["alice", "ok"],
      ["alice", "ok"],
      ["alice", "user"],
      ["bob", "ok"],
      ["carol", "gateway"],
    ];
    const held: (() => void)[] = [];
    for (const [user, expected] of steps) {
      const r = slots.acquire(user);
      expect("refused" in r ? r.refused : "ok").toBe(expected);
      if ("release" in r) held.push(r.release);
    }
    expect([slots.size, slots.countOf("alice"), slots.countOf("bob")]).toEqual([3, 2, 1]);
    held[0]!();
    held[0]!(); // idempotent: every way a watcher ends may call it
    expect([slots.size, slots.countOf("alice")]).toEqual([2, 1]);
    expect("release" in slots.acquire("carol")).toBe(true);
    expect(slots.acquire("dave")).toEqual({ refused: "gateway" });
  });
});
