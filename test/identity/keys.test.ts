import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { DEV_ISSUER_KEY_FILE, TURN_SIGNING_KEY_FILE, loadOrCreateSigningKey } from "../../src/identity/keys.ts";
import { tempDir } from "./helpers.ts";

let t: ReturnType<typeof tempDir>;
beforeEach(() => (t = tempDir()));
afterEach(() => t.cleanup());

describe("loadOrCreateSigningKey", () => {
  test("creates an ES256 private JWK with mode 0600, then reuses it", async () => {
    const dir = join(t.dir, "data");
    const a = await loadOrCreateSigningKey(dir, TURN_SIGNING_KEY_FILE);
    const path = join(dir, TURN_SIGNING_KEY_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const stored = JSON.parse(readFileSync(path, "utf8"));
    expect(stored).toMatchObject({ kty: "EC", crv: "P-256", kid: a.kid, alg: "ES256" });
    expect(typeof stored.d).toBe("string");
    expect(a.publicJwk).not.toHaveProperty("d");
    expect(a.publicJwk).toMatchObject({ kid: a.kid, alg: "ES256", use: "sig" });
    const b = await loadOrCreateSigningKey(dir, TURN_SIGNING_KEY_FILE);
    expect(b.kid).toBe(a.kid);
    expect(readdirSync(dir)).toEqual([TURN_SIGNING_KEY_FILE]);
  });

  test("separate files hold separate keys", async () => {
    const a = await loadOrCreateSigningKey(t.dir, TURN_SIGNING_KEY_FILE);
    const b = await loadOrCreateSigningKey(t.dir, DEV_ISSUER_KEY_FILE);
    expect(a.kid).not.toBe(b.kid);
  });

  const bad: [string, (path: string) => void][] = [
    ["not JSON", (p) => writeFileSync(p, "nope", { mode: 0o600 })],
    ["an RSA/oct key", (p) => writeFileSync(p, JSON.stringify({ kty: "oct", k: "AAAA" }), { mode: 0o600 })],
    ["a public-only EC key", (p) => writeFileSync(p, JSON.stringify({ kty: "EC", crv: "P-256", x: "a", y: "b" }), { mode: 0o600 })],
    ["group-readable", (p) => { writeFileSync(p, "{}", { mode: 0o600 }); chmodSync(p, 0o640); }],
    ["a symlink", (p) => { writeFileSync(p + ".real", "{}", { mode: 0o600 }); symlinkSync(p + ".real", p); }],
  ];
  for (const [name, setup] of bad)
    test(`refuses a key file that is ${name}`, async () => {
      setup(join(t.dir, DEV_ISSUER_KEY_FILE));
      await expect(loadOrCreateSigningKey(t.dir, DEV_ISSUER_KEY_FILE)).rejects.toBeInstanceOf(ConfigError);
    });
});
