/** SenderLedger (src/sessions/sender-ledger.ts): stamping rules, seeding and bounds. */
import { describe, expect, test } from "bun:test";
import { SenderLedger, withoutSenderClaims, type LedgerMessage } from "../../src/sessions/sender-ledger.ts";

const alice = { senderId: "alice", senderDisplayName: "Alice" };
const bob = { senderId: "bob", senderDisplayName: "Bob" };
const user = (id: string, content: string, metadata?: Record<string, unknown>): LedgerMessage => ({ id, role: "user", content, ...(metadata ? { metadata } : {}) });
const senders = (ms: LedgerMessage[]) => ms.map((m) => m.metadata?.senderId ?? null);

describe("SenderLedger.stamp", () => {
  test("new user messages are the sender's; known ones keep their author; other roles lose sender fields", () => {
    const l = new SenderLedger();
    l.stamp("p", "s", [user("1", "a")], alice);
    const out = l.stamp("p", "s", [user("1", "a", { senderId: "mallory" }), { id: "2", role: "assistant", content: "x", metadata: { senderId: "alice", senderDisplayName: "A", k: 1 } }, user("3", "b")], bob);
    expect(senders(out)).toEqual(["alice", null, "bob"]);
    expect(out[1]!.metadata).toEqual({ k: 1 });
  });

  test("a known ID with new content is a new message; sessions are separate", () => {
    const l = new SenderLedger();
    l.stamp("p", "s", [user("1", "a")], alice);
    expect(senders(l.stamp("p", "s", [user("1", "changed")], bob))).toEqual(["bob"]);
    expect(senders(l.stamp("p", "other", [user("1", "a")], bob))).toEqual(["bob"]);
    expect(senders(l.stamp("q", "s", [user("1", "a")], bob))).toEqual(["bob"]);
    expect(senders(l.stamp("p", "s", [user("1", "a")], bob))).toEqual(["alice"]);
  });

  test("a known message re-sent with extra fields (a name, metadata) is the current sender's, not its author's", () => {
    const l = new SenderLedger();
    l.stamp("p", "s", [user("a2", "yes, go ahead")], alice);
    const out = l.stamp("p", "s", [{ ...user("a2", "yes, go ahead", { approvedBy: "alice" }) }, { id: "a2", role: "user", content: "yes, go ahead", name: "alice-approved" }, user("a2", "yes, go ahead", { senderId: "alice" })], bob);
    expect(senders(out)).toEqual(["bob", "bob", "alice"]); // only the unchanged copy keeps Alice
  });

  test("the input is not modified", () => {
    const l = new SenderLedger();
    const m = user("1", "a", { senderId: "mallory" });
    l.stamp("p", "s", [m], bob);
    expect(m.metadata).toEqual({ senderId: "mallory" });
  });

  test("seeded once per session from stored snapshots (user messages with a sender only)", () => {
    let reads = 0;
    const l = new SenderLedger({
      seed: () => {
        reads++;
        return [user("1", "a", { senderId: "alice", senderDisplayName: "Alice" }), { id: "2", role: "assistant", content: "b", metadata: { senderId: "alice" } }, user("3", "c")];
      },
    });
    const out = l.stamp("p", "s", [user("1", "a"), { id: "2", role: "assistant", content: "b" }, user("3", "c")], bob);
    expect(senders(out)).toEqual(["alice", null, "bob"]);
    l.stamp("p", "s", [], bob);
    expect(reads).toBe(1);
  });

  test("bounded per session and in sessions, least recently used dropped first", () => {
    const l = new SenderLedger({ maxPerSession: 2, maxSessions: 2 });
    l.stamp("p", "s", [user("1", "a"), user("2", "b")], alice);
    l.stamp("p", "s", [user("1", "a")], bob); // touches 1: 2 is now the oldest
    l.stamp("p", "s", [user("3", "c")], alice); // drops 2
    expect(senders(l.stamp("p", "s", [user("1", "a"), user("2", "b")], bob))).toEqual(["alice", "bob"]);
    l.stamp("p", "t", [user("9", "z")], alice);
    l.stamp("p", "u", [user("9", "z")], alice); // drops session p/s (least recently used)
    expect(senders(l.stamp("p", "s", [user("1", "a")], bob))).toEqual(["bob"]);
  });
});

describe("withoutSenderClaims (runner events)", () => {
  test.each([
    ["snapshot messages", { type: "MESSAGES_SNAPSHOT", messages: [{ id: "1", role: "user", metadata: { senderId: "alice", k: 1 } }] }, { type: "MESSAGES_SNAPSHOT", messages: [{ id: "1", role: "user", metadata: { k: 1 } }] }],
    ["event metadata (TEXT_MESSAGE_START)", { type: "TEXT_MESSAGE_START", messageId: "m", role: "user", metadata: { senderId: "alice", senderDisplayName: "Alice" } }, { type: "TEXT_MESSAGE_START", messageId: "m", role: "user", metadata: {} }],
    ["RUN_STARTED input messages", { type: "RUN_STARTED", input: { runId: "r", messages: [{ id: "1", role: "user", metadata: { senderDisplayName: "Alice" } }] } }, { type: "RUN_STARTED", input: { runId: "r", messages: [{ id: "1", role: "user", metadata: {} }] } }],
  ])("%s lose sender fields", (_n, event, want) => {
    expect(withoutSenderClaims(event)).toEqual(want as never);
  });

  test("an event that claims no sender is left alone (undefined: keep its raw bytes)", () => {
    for (const e of [{ type: "TEXT_MESSAGE_CONTENT", messageId: "m", delta: "senderId" }, { type: "MESSAGES_SNAPSHOT", messages: [{ id: "1", role: "user" }] }, { type: "CUSTOM", metadata: { other: 1 } }])
      expect(withoutSenderClaims(e)).toBeUndefined();
  });
});
