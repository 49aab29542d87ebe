/**
 * The live-view watcher decisions (src/http/watch-guard.ts, src/http/routes/agui-live.ts), one
 * row per case: where a reconnecting watcher resumes, whether a re-checked watcher may stay,
 * when the guard checks, and when a WebSocket is cut for not reading.
 */
import { describe, expect, test } from "bun:test";
import { resumeAfter } from "../../src/http/routes/agui-live.ts";
import { sendBounded, WS_MAX_BUFFERED_BYTES } from "../../src/http/routes/agui-ws.ts";
import { guardWatcher, mayStillWatch, type WatchEndReason } from "../../src/http/watch-guard.ts";
import type { Principal } from "../../src/identity/principal.ts";
import { SessionEventBus } from "../../src/sessions/event-bus.ts";
import type { SessionRole } from "../../src/sessions/types.ts";

describe("resumeAfter(Last-Event-ID, currentSeq)", () => {
  const rows: [string | null, number, number][] = [
    [null, 40, 0],
    ["12", 40, 12],
    [" 12 ", 40, 12],
    ["40", 40, 40],
    ["41", 40, 0], // beyond the current sequence: from before a log reset, or made up
    ["99999999", 0, 0],
    ["0", 40, 0],
    ["", 40, 0],
    ["garbage", 40, 0],
    ["-3", 40, 0],
    ["1.5", 40, 0],
    ["1e3", 5000, 0],
    ["9".repeat(30), 40, 0],
  ];
  for (const [header, current, expected] of rows)
    test(`${JSON.stringify(header)} with current ${current} → ${expected}`, () => expect(resumeAfter(header, current)).toBe(expected));
});

const user = (userId: string): Principal => ({ kind: "user", userId, userName: userId, source: "dev" });
const store = (role: SessionRole | Error) => ({
  roleOf: async () => {
    if (role instanceof Error) throw role;
    return role;
  },
});

describe("mayStillWatch", () => {
  const rows: [string, Principal | null, SessionRole | Error, WatchEndReason | undefined][] = [
    ["owner stays", user("alice"), "owner", undefined],
    ["edit stays", user("alice"), "edit", undefined],
    ["view stays", user("alice"), "view", undefined],
    ["removed", user("alice"), "none", "not_a_participant"],
    ["token no longer authenticates", null, "owner", "unauthenticated"],
    ["someone else", user("mallory"), "owner", "unauthenticated"],
    ["turn token", { kind: "turn", userId: "alice", project: "p", session: "s", runId: "r", tokenId: "t" }, "owner", "unauthenticated"],
    ["store down: fail closed", user("alice"), new Error("store down"), "check_failed"],
  ];
  for (const [name, principal, role, expected] of rows)
    test(name, async () => expect(await mayStillWatch(store(role), "p", "s", "alice", principal)).toBe(expected));
});

describe("guardWatcher", () => {
  const guard = (bus: SessionEventBus, role: { now: SessionRole }, ended: WatchEndReason[], sinceVersion = 0, recheckMs = 60_000) =>
    guardWatcher({
      bus,
      sessions: { roleOf: async () => role.now },
      project: "p",
      session: "s",
      userId: "alice",
      recheckMs,
      sinceVersion,
      reauthenticate: async () => user("alice"),
      onEnd: (r) => ended.push(r),
    });

  test("a membership change triggers a check; the watcher is ended once, then the guard stops", async () => {
    const bus = new SessionEventBus();
    const role = { now: "view" as SessionRole };
    const ended: WatchEndReason[] = [];
    const g = guard(bus, role, ended);
    bus.membershipChanged("p", "s");
    await Bun.sleep(10);
    expect(ended).toEqual([]);
    role.now = "none";
    bus.membershipChanged("p", "other");
    await Bun.sleep(10);
    expect(ended).toEqual([]);
    bus.membershipChanged("p", "s");
    bus.membershipChanged("p", "s");
    await Bun.sleep(10);
    expect(ended).toEqual(["not_a_participant"]);
    expect(await g.check()).toBe(false);
    expect(ended).toHaveLength(1);
  });

  test("a change between the first authorisation and the guard's start is not missed", async () => {
    const bus = new SessionEventBus();
    const since = bus.membershipVersion("p", "s");
    bus.membershipChanged("p", "s");
    const ended: WatchEndReason[] = [];
    guard(bus, { now: "none" }, ended, since);
    await Bun.sleep(10);
    expect(ended).toEqual(["not_a_participant"]);
  });

  test.each([
    ["the identity provider is unavailable (503)", Object.assign(new Error("down"), { status: 503 }), "check_failed"],
    ["the token no longer verifies (401)", Object.assign(new Error("bad"), { status: 401 }), "unauthenticated"],
  ] as const)("re-authentication fails because %s → %s", async (_n, err, want) => {
    const ended: WatchEndReason[] = [];
    const g = guardWatcher({
      bus: new SessionEventBus(),
      sessions: { roleOf: async () => "owner" },
      project: "p",
      session: "s",
      userId: "alice",
      recheckMs: 60_000,
      sinceVersion: 0,
      reauthenticate: async () => {
        throw err;
      },
      onEnd: (r) => ended.push(r),
    });
    expect(await g.check()).toBe(false);
    expect(ended).toEqual([want]);
  });

  test("the periodic check runs every recheckMs; stop() ends it", async () => {
    const bus = new SessionEventBus();
    const role = { now: "edit" as SessionRole };
    const ended: WatchEndReason[] = [];
    const g = guard(bus, role, ended, 0, 100);
    await Bun.sleep(250);
    expect(ended).toEqual([]);
    role.now = "none";
    await Bun.sleep(250);
    expect(ended).toEqual(["not_a_participant"]);
    const stopped: WatchEndReason[] = [];
    guard(bus, role, stopped, 0, 100).stop();
    await Bun.sleep(250);
    expect(stopped).toEqual([]);
    g.stop();
  });
});

describe("sendBounded (WebSocket frames for a client that may not read)", () => {
  // [send status from Bun, bytes buffered after it, stays open]
  const rows: [number, number, boolean][] = [
    [120, 0, true],
    [-1, WS_MAX_BUFFERED_BYTES, true], // backpressure, at the cap
    [-1, WS_MAX_BUFFERED_BYTES + 1, false], // over the cap
    [0, 0, false], // Bun dropped the frame
  ];
  for (const [status, buffered, open] of rows)
    test(`status ${status}, ${buffered} bytes buffered → ${open ? "sent" : "closed 1008"}`, () => {
      const closes: [number, string][] = [];
      const ws = { send: () => status, close: (code: number, reason: string) => void closes.push([code, reason]), raw: { getBufferedAmount: () => buffered } };
      expect(sendBounded(ws, "{}")).toBe(open);
      expect(closes).toEqual(open ? [] : [[1008, "client too slow"]]);
    });
});
