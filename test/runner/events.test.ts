import { describe, expect, test } from "bun:test";
import { isTerminalEvent, LineSplitter, parseEventLine } from "../../src/runner/events.ts";

describe("parseEventLine", () => {
  const ev = JSON.stringify({ type: "RUN_STARTED", threadId: "t", runId: "r" });
  test.each([
    ["JSON line", ev, "event"],
    ["SSE data line", `data: ${ev}`, "event"],
    ["SSE data without space", `data:${ev}`, "event"],
    ["CRLF-trimmed", `${ev}\r`, "event"],
    ["blank", "", "skip"],
    ["whitespace", "   ", "skip"],
    ["SSE comment", ": heartbeat", "skip"],
    ["event field", "event: message", "skip"],
    ["id field", "id: 7", "skip"],
    ["retry field", "retry: 1000", "skip"],
    ["empty data", "data:", "skip"],
    ["not JSON", "hello there", "invalid"],
    ["JSON array", "[1,2]", "invalid"],
    ["JSON string", '"RUN_STARTED"', "invalid"],
    ["unknown type", JSON.stringify({ type: "NOPE" }), "invalid"],
    ["missing field", JSON.stringify({ type: "TEXT_MESSAGE_CONTENT", messageId: "m" }), "invalid"],
  ])("%s → %s", (_n, line, kind) => expect(parseEventLine(line).kind).toBe(kind as "event"));

  test("extra properties pass through", () => {
    const p = parseEventLine(JSON.stringify({ type: "CUSTOM", name: "x", value: 1, extra: "kept" }));
    expect(p.kind === "event" && (p.event as unknown as { extra: string }).extra).toBe("kept");
  });
  test("invalid reason names the field", () => {
    const p = parseEventLine(JSON.stringify({ type: "TEXT_MESSAGE_CONTENT", messageId: "m" }));
    expect(p.kind === "invalid" && p.reason).toContain("delta");
  });
  test.each([["RUN_FINISHED", true], ["RUN_ERROR", true], ["RUN_STARTED", false], ["TEXT_MESSAGE_END", false]])("isTerminalEvent(%s)", (t, want) =>
    expect(isTerminalEvent({ type: t })).toBe(want),
  );
});

describe("LineSplitter", () => {
  const collect = (max: number) => {
    const lines: [string, boolean][] = [];
    return { lines, s: new LineSplitter(max, (l, t) => lines.push([l, t])) };
  };
  test("many lines in one chunk, one line over many chunks, final unterminated line", () => {
    const { lines, s } = collect(100);
    s.push(Buffer.from("a\nb\r\nc"));
    s.push(Buffer.from("d"));
    s.push(Buffer.from("e\nlast"));
    s.end();
    expect(lines).toEqual([["a", false], ["b", false], ["cde", false], ["last", false]]);
  });
  test("a multi-byte character split across chunks is reassembled", () => {
    const { lines, s } = collect(100);
    const b = Buffer.from("héllo €\n");
    for (let i = 0; i < b.length; i++) s.push(b.subarray(i, i + 1));
    expect(lines).toEqual([["héllo €", false]]);
  });
  test("an over-long line is cut to maxLineBytes and flagged; memory stays bounded", () => {
    const { lines, s } = collect(8);
    for (let i = 0; i < 1000; i++) s.push(Buffer.alloc(1024, 0x78));
    s.push(Buffer.from("\nok\n"));
    expect(lines).toEqual([["xxxxxxxx", true], ["ok", false]]);
  });
});
