import { expect, test } from "bun:test";
import { isDns1123Label, sanitizeDisplayName, sanitizeUserId } from "../src/names.ts";

test.each([
  ["alice", "alice"],
  ["alice@example.com", "alice-example.com"],
  ["  Bob Smith ", "Bob-Smith"],
  ["a//b::c", "a-b-c"],
  ["---x---", "x"],
  ["system:serviceaccount:ns:sa", "system-serviceaccount-ns-sa"],
  ["ü", ""],
  ["x".repeat(300), "x".repeat(253)],
])("sanitizeUserId(%p) = %p", (raw, want) => {
  expect(sanitizeUserId(raw)).toBe(want);
});

test.each([
  ["p", true], ["my-project-1", true], ["A", false], ["../x", false], ["-a", false], ["a-", false], ["a".repeat(63), true], ["a".repeat(64), false], ["", false], ["a_b", false],
])("isDns1123Label(%p) = %p", (name, ok) => {
  expect(isDns1123Label(name)).toBe(ok);
});

test("display names lose control characters and are bounded", () => {
  expect(sanitizeDisplayName("Eve\r\nX-Evil: 1")).toBe("EveX-Evil: 1");
  expect(sanitizeDisplayName("n".repeat(300)).length).toBe(255);
});
