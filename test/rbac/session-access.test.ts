import { expect, test } from "bun:test";
import { mayPerform, type SessionAction } from "../../src/rbac/session-access.ts";
import type { SessionRole } from "../../src/sessions/types.ts";

const table: [SessionRole, SessionAction, boolean][] = [
  ["owner", "read", true], ["owner", "run", true], ["owner", "manage", true], ["owner", "interrupt", true],
  ["edit", "read", true], ["edit", "run", true], ["edit", "manage", false], ["edit", "interrupt", true],
  ["view", "read", true], ["view", "watch", true], ["view", "run", false], ["view", "manage", false], ["view", "interrupt", false],
  ["none", "read", false], ["none", "watch", false], ["none", "run", false], ["none", "manage", false],
];

test.each(table)("%s may %s: %p", (role, action, allowed) => {
  expect(mayPerform(role, action)).toBe(allowed);
});
