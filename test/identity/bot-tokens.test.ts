import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { BotTokenAuthenticator } from "../../src/identity/bot-tokens.ts";
import { errorOf, tempDir } from "./helpers.ts";

const A = "runner-token-aaaaaaaaaaaaaaaaaaaa";
const B = "Zm9vYmFyYmF6cXV4cXV1eA==";

let t: ReturnType<typeof tempDir>;
beforeEach(() => (t = tempDir()));
afterEach(() => t.cleanup());

describe("BotTokenAuthenticator.parse", () => {
  const bots = BotTokenAuthenticator.parse(`# runners\n\nrunner-a:${A}\r\n  ${B}  \n`);
  const rows: [string, string, string | null][] = [
    ["named token", A, "runner-a"],
    ["bare token named by line", B, "bot-4"],
    ["unknown", "x".repeat(32), null],
    ["prefix of a token", A.slice(0, -1), null],
    ["token plus a char", A + "a", null],
    ["empty", "", null],
  ];
  for (const [name, token, expected] of rows) test(name, () => expect(bots.match(token)).toBe(expected));
  test("size", () => expect(bots.size).toBe(2));

  const bad: [string, string][] = [
    ["short token", "a:short"],
    ["bad name", `Runner_A:${A}`],
    ["duplicate name", `a:${A}\na:${B}`],
    ["empty token", "a:"],
    ["token with spaces", `a:${A} ${B}`],
    ["empty scope", `a@:${A}`],
    ["scope with three parts", `a@demo/s/x:${A}`],
    ["scope with an empty session", `a@demo/:${A}`],
    ["scope not DNS-1123", `a@Demo/s:${A}`],
  ];
  for (const [name, text] of bad) test(`rejects ${name}`, () => expect(() => BotTokenAuthenticator.parse(text)).toThrow(ConfigError));

  test("errors never contain the token", () => {
    for (const text of [`Bad_Name:${A}`, `a:${A}\na:${A}`, `a:${A} x`]) {
      const err = (() => {
        try {
          BotTokenAuthenticator.parse(text);
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect(err!.message).not.toContain(A);
    }
  });
});

describe("bot token scopes", () => {
  const C = "runner-token-cccccccccccccccccccc";
  const bots = BotTokenAuthenticator.parse(`pair@demo/pairing:${A}\nproj@demo:${B}\nany:${C}`);
  test.each([
    [A, { kind: "service", name: "pair", project: "demo", session: "pairing" }],
    [B, { kind: "service", name: "proj", project: "demo" }],
    [C, { kind: "service", name: "any" }],
  ])("%s → %p", (token, principal) => {
    expect(bots.principalFor(token)).toEqual(principal as never);
  });
  test("unbound lists the tokens that may act in any session", () => expect(bots.unbound).toEqual(["any"]));
});

describe("BotTokenAuthenticator", () => {
  test("fromFile and authenticate", async () => {
    const path = join(t.dir, "bots");
    writeFileSync(path, `ci:${A}\n`, { mode: 0o600 });
    const bots = BotTokenAuthenticator.fromFile(path);
    const req = (v?: string) => ({ headers: new Headers(v === undefined ? {} : { authorization: v }) });
    expect(await bots.authenticate(req(`Bearer ${A}`))).toEqual({ kind: "service", name: "ci" });
    expect(await bots.authenticate(req(`bearer ${A}`))).toEqual({ kind: "service", name: "ci" });
    expect(await bots.authenticate(req(`Bearer ${B}`))).toBeNull();
    expect(await bots.authenticate(req())).toBeNull();
    expect(await errorOf(() => bots.authenticate(req(A)))).toEqual({ status: 401, code: "invalid_token" });
  });

  test("a missing file is a ConfigError naming the setting", () => {
    expect(() => BotTokenAuthenticator.fromFile(join(t.dir, "nope"))).toThrow(/TURNKEY_RUNNER_BOT_TOKENS_FILE/);
  });
});
