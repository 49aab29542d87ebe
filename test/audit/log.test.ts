import { describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import { createLogger } from "../../src/log.ts";

function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  return { lines, stream, parsed: () => lines.map((l) => JSON.parse(l)) };
}

const SECRET = "ghp_supersecretvalue123";

describe("createLogger redaction", () => {
  const rows: [string, Record<string, unknown>][] = [
    ["top-level token", { token: SECRET }],
    ["nested token", { credential: { token: SECRET } }],
    ["apiKey", { coderabbit: { apiKey: SECRET } }],
    ["password", { password: SECRET }],
    ["refresh token", { google: { refreshToken: SECRET } }],
    ["authorization header", { headers: { authorization: `Bearer ${SECRET}` } }],
    ["request headers", { req: { headers: { authorization: `Bearer ${SECRET}`, cookie: SECRET } } }],
    ["caller token header", { headers: { "x-caller-token": `Bearer ${SECRET}` } }],
    ["masterKey in config", { config: { masterKey: SECRET, port: 1 } }],
  ];
  for (const [name, obj] of rows)
    test(name, () => {
      const c = capture();
      createLogger("info", c.stream).info(obj, "msg");
      expect(c.lines).toHaveLength(1);
      expect(c.lines[0]).not.toContain(SECRET);
      expect(c.lines[0]).toContain("[REDACTED]");
    });

  test("non-secret fields survive; level filtering works", () => {
    const c = capture();
    const log = createLogger("warn", c.stream);
    log.info({ project: "p" }, "hidden");
    log.warn({ project: "p", token: SECRET }, "shown");
    expect(c.parsed()).toHaveLength(1);
    expect(c.parsed()[0]).toMatchObject({ project: "p", token: "[REDACTED]", msg: "shown", level: 40 });
  });
});
