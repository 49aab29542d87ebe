/** Pure edge checks: JSON nesting (src/http/body.ts) and path percent-encoding (src/http/app.ts). */
import { describe, expect, test } from "bun:test";
import { parseClientJson } from "../../src/http/body.ts";
import { jsonTooDeep } from "../../src/json.ts";
import { decodablePath } from "../../src/http/app.ts";
import { TurnkeyError } from "../../src/errors.ts";
import { unavailableLogger, UNAVAILABLE_LOG_INTERVAL_MS } from "../../src/http/errors.ts";

describe("jsonTooDeep (max 3)", () => {
  test.each([
    ["{}", false],
    ['{"a":[{}]}', false],
    ['{"a":[{"b":[]}]}', true],
    ['[[["x"]]]', false],
    ["[[[[1]]]]", true],
    ['{"s":"[[[[[[[[["}', false], // brackets inside strings do not count
    ['{"s":"\\"[[[[[["}', false], // nor after an escaped quote
    ['["\\\\",[[[1]]]]', true], // an escaped backslash ends the string
    ["]]]][[[", false], // malformed: left to JSON.parse
  ])("%s → %p", (text, want) => {
    expect(jsonTooDeep(text, 3)).toBe(want);
  });

  test("parseClientJson refuses 101 levels with invalid_json, accepts 100", () => {
    expect(() => parseClientJson("[".repeat(101) + "]".repeat(101))).toThrow(TurnkeyError);
    expect(parseClientJson("[".repeat(100) + "]".repeat(100))).toBeInstanceOf(Array);
  });
});

describe("decodablePath", () => {
  test.each([
    ["http://h/api/projects/p/agentic-sessions/s/collaborators/bob", true],
    ["http://h/a/alice%40example.com", true],
    ["http://h/a/%E0%A4%AB", true], // a whole UTF-8 character
    ["http://h/a/%E0%A4bob", false], // truncated UTF-8 sequence
    ["http://h/a/%ZZbob", false],
    ["http://h/a/mal%E0lory", false],
    ["http://h/a/b?q=%ZZ", true], // only the path is checked
    ["http://h:8080/", true],
  ])("%s → %p", (url, want) => {
    expect(decodablePath(url)).toBe(want);
  });
});

describe("unavailableLogger", () => {
  test("logs a 503 with its cause at most once per interval per code; ignores other errors", () => {
    const lines: object[] = [];
    let now = 0;
    const log = unavailableLogger({ warn: (o) => void lines.push(o) }, () => now);
    const down = Object.defineProperty(new TurnkeyError(503, "identity_unavailable", "identity provider unavailable"), "cause", { value: new Error("connect ECONNREFUSED") });
    log(down);
    log(down);
    log(new TurnkeyError(503, "store_unavailable", "store unavailable"));
    log(new TurnkeyError(401, "invalid_token", "bad token"));
    log(new Error("boom"));
    now = UNAVAILABLE_LOG_INTERVAL_MS;
    log(down);
    expect(lines).toEqual([
      { code: "identity_unavailable", reason: "connect ECONNREFUSED" },
      { code: "store_unavailable", reason: "store unavailable" },
      { code: "identity_unavailable", reason: "connect ECONNREFUSED" },
    ]);
  });
});
