import { expect, test } from "bun:test";
import { ActiveRunMap, type ActiveRun } from "../../src/sessions/active-runs.ts";
import { TurnkeyError } from "../../src/errors.ts";

const run = (runId: string, extra: Partial<ActiveRun> = {}): ActiveRun => ({
  project: "p", session: "s", runId, threadId: "s", userId: "bob", userName: "Bob", startedAt: Date.now(), deadline: Date.now() + 60_000, tokenId: "", ...extra,
});

test("one turn per session: a second concurrent run is session_busy", () => {
  const m = new ActiveRunMap();
  m.begin(run("r1"));
  expect(() => m.begin(run("r2"))).toThrow(TurnkeyError);
  try { m.begin(run("r2")); } catch (e) { expect((e as TurnkeyError).code).toBe("session_busy"); expect((e as TurnkeyError).status).toBe(409); }
  m.begin(run("r3", { session: "other" }));
  expect(m.end("p", "s", "r1")).toBe(true);
  m.begin(run("r2"));
  expect(m.size).toBe(2);
});

test("a run past its deadline is not active", () => {
  const m = new ActiveRunMap();
  m.begin(run("r1", { deadline: Date.now() - 1 }));
  expect(m.get("p", "s", "r1")).toBeUndefined();
});

test("end is idempotent and token IDs can be attached", () => {
  const m = new ActiveRunMap();
  m.begin(run("r1"));
  m.setTokenId("p", "s", "r1", "jti-1");
  expect(m.get("p", "s", "r1")?.tokenId).toBe("jti-1");
  expect(m.end("p", "s", "r1")).toBe(true);
  expect(m.end("p", "s", "r1")).toBe(false);
  expect(m.forSession("p", "s")).toEqual([]);
});

test("a gateway-wide cap refuses further turns with 429 too_many_turns", () => {
  const m = new ActiveRunMap(1, 2);
  m.begin(run("r1", { session: "a" }));
  m.begin(run("r2", { session: "b" }));
  try {
    m.begin(run("r3", { session: "c" }));
    throw new Error("expected a refusal");
  } catch (e) {
    expect((e as TurnkeyError).status).toBe(429);
    expect((e as TurnkeyError).code).toBe("too_many_turns");
  }
  m.end("p", "a", "r1");
  m.begin(run("r3", { session: "c" }));
});
