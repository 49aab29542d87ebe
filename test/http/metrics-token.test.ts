/**
 * `TURNKEY_METRICS_TOKEN_FILE` (src/identity/static-token.ts, src/http/routes/metrics.ts): with a
 * token file, `/metrics` answers only its bearer token, re-reading the file (rotation); a missing or
 * weak file stops start-up naming the setting, never echoing the token.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { readStaticToken } from "../../src/identity/static-token.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

const dir = mkdtempSync(join(tmpdir(), "turnkey-metrics-token-"));
const file = join(dir, "token");
const TOKEN = "prometheus-scrape-token-0123456789";
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("readStaticToken", () => {
  test.each([
    ["missing file", null, /cannot read/],
    ["short token", "short", /at least 16/],
    ["token with a space", "abcdefgh ijklmnopq", /b64token/],
  ])("%s → ConfigError naming the setting, not the token", (_, content, message) => {
    const path = content === null ? join(dir, "nope") : join(dir, "bad");
    if (content !== null) writeFileSync(path, content);
    let err: unknown;
    try {
      readStaticToken(path, "TURNKEY_METRICS_TOKEN_FILE");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).setting).toBe("TURNKEY_METRICS_TOKEN_FILE");
    expect((err as Error).message).toMatch(message);
    if (content) expect((err as Error).message).not.toContain(content);
  });
  test("trims the file", () => {
    writeFileSync(file, `  ${TOKEN}\n`);
    expect(readStaticToken(file, "X")).toBe(TOKEN);
  });
});

describe("GET /metrics with TURNKEY_METRICS_TOKEN_FILE", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    writeFileSync(file, TOKEN + "\n", { mode: 0o600 });
    gw = await startGateway({ TURNKEY_METRICS_TOKEN_FILE: file });
  });
  afterAll(() => gw.stop());
  const scrape = (auth?: string) => fetch(`${gw.url}/metrics`, auth ? { headers: { authorization: auth } } : {});

  test("only the file's bearer token gets the metrics; others get 401 JSON with WWW-Authenticate", async () => {
    const ok = await scrape(`Bearer ${TOKEN}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("turnkey_");
    for (const auth of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, `Bearer ${await gw.token("alice")}`]) {
      const res = await scrape(auth);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="metrics"');
      expect(await res.json()).toEqual({ error: expect.any(String), code: "unauthenticated" });
    }
  });

  test("a rotated file takes effect without a restart; probes stay open", async () => {
    const next = "rotated-scrape-token-9876543210";
    writeFileSync(file, next);
    expect((await scrape(`Bearer ${TOKEN}`)).status).toBe(401);
    expect((await scrape(`Bearer ${next}`)).status).toBe(200);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  test("a gateway whose token file is unreadable does not start", async () => {
    await expect(startGateway({ TURNKEY_METRICS_TOKEN_FILE: join(dir, "missing") })).rejects.toThrow(/TURNKEY_METRICS_TOKEN_FILE/);
  });
});
