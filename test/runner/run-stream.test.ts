import { describe, expect, test } from "bun:test";
import type { BaseEvent } from "@ag-ui/core";
import { RunStream } from "../../src/runner/run-stream.ts";

const ids = { threadId: "t1", runId: "r1" };
const ev = (type: string, extra: Record<string, unknown> = {}) => ({ type, ...extra }) as unknown as BaseEvent;
const run = (events: BaseEvent[], fail?: [string, string]) => {
  const out: BaseEvent[] = [];
  const s = new RunStream(ids, (e) => out.push(e));
  const results = events.map((e) => s.send(e));
  if (fail) s.fail(...fail);
  return { out, results, types: out.map((e) => e.type as string), s };
};

describe("RunStream", () => {
  test.each([
    ["well-formed", [ev("RUN_STARTED", ids), ev("RUN_FINISHED", ids)], undefined, ["RUN_STARTED", "RUN_FINISHED"]],
    ["RUN_STARTED synthesised", [ev("TEXT_MESSAGE_START", { messageId: "m", role: "assistant" })], undefined, ["RUN_STARTED", "TEXT_MESSAGE_START"]],
    ["duplicate RUN_STARTED dropped", [ev("RUN_STARTED", ids), ev("RUN_STARTED", ids), ev("RUN_FINISHED", ids)], undefined, ["RUN_STARTED", "RUN_FINISHED"]],
    ["events after terminal dropped", [ev("RUN_STARTED", ids), ev("RUN_ERROR", { message: "x" }), ev("RUN_FINISHED", ids), ev("CUSTOM", { name: "n", value: 1 })], undefined, ["RUN_STARTED", "RUN_ERROR"]],
    ["fail after nothing", [], ["boom", "runner_exited"], ["RUN_STARTED", "RUN_ERROR"]],
    ["fail after terminal is a no-op", [ev("RUN_FINISHED", ids)], ["boom", "runner_exited"], ["RUN_STARTED", "RUN_FINISHED"]],
  ] as [string, BaseEvent[], [string, string] | undefined, string[]][])("%s", (_n, events, fail, want) => {
    expect(run(events, fail).types).toEqual(want);
  });

  test("RUN_STARTED/RUN_FINISHED carry the turn's IDs", () => {
    const { out } = run([ev("RUN_STARTED", { threadId: "other", runId: "other" }), ev("RUN_FINISHED", { threadId: "x", runId: "y" })]);
    for (const e of out) expect(e).toMatchObject(ids);
  });

  test("synthesised RUN_ERROR has message and code", () => {
    const { out, s } = run([], ["Runner exited with code 3 before finishing the run", "runner_exited"]);
    expect(out[1]).toMatchObject({ type: "RUN_ERROR", message: "Runner exited with code 3 before finishing the run", code: "runner_exited" });
    expect(s.ended).toBe(true);
  });

  test("a throwing emit is reported, not thrown", () => {
    const errors: unknown[] = [];
    const s = new RunStream(ids, () => { throw new Error("closed"); }, (e) => errors.push(e));
    expect(() => s.fail("x", "y")).not.toThrow();
    expect(errors).toHaveLength(2);
    expect(s.ended).toBe(true);
  });
});
