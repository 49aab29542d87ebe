import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { base64url } from "jose";
import { ConfigError, TurnkeyError } from "../../src/errors.ts";
import { SecretBox, loadMasterKey } from "../../src/store/encryption.ts";

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "turnkey-enc-"));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const SECRET = "ghp_SuperSecretTokenValue0123456789";
const alice = { userId: "alice", provider: "github" };

async function decryptError(p: Promise<unknown>): Promise<TurnkeyError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TurnkeyError);
    return e as TurnkeyError;
  }
  throw new Error("expected decrypt to fail");
}

describe("SecretBox", () => {
  test("round-trips a JSON value as a compact dir/A256GCM JWE without the plaintext in it", async () => {
    const box = SecretBox.fromConfig({ dataDir });
    const jwe = await box.encrypt({ token: SECRET, email: "a@example.com" }, alice);
    expect(jwe.split(".")).toHaveLength(5);
    expect(jwe).not.toContain(SECRET);
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(jwe.split(".")[0]!)));
    expect(header).toMatchObject({ alg: "dir", enc: "A256GCM", uid: "alice", prv: "github", kid: box.keyId });
    expect(await box.decrypt(jwe, alice)).toEqual({ token: SECRET, email: "a@example.com" });
    // fresh IV each time
    expect(await box.encrypt({ token: SECRET }, alice)).not.toBe(await box.encrypt({ token: SECRET }, alice));
  });

  test("key file is created 0600 on first start and reused on reopen", async () => {
    const box = SecretBox.fromConfig({ dataDir });
    const path = join(dataDir, "master.key");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const jwe = await box.encrypt({ token: SECRET }, alice);
    const reopened = SecretBox.fromConfig({ dataDir });
    expect(reopened.keyId).toBe(box.keyId);
    expect(await reopened.decrypt(jwe, alice)).toEqual({ token: SECRET });
  });

  test("TURNKEY_MASTER_KEY is used when given, and no key file is written", async () => {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const masterKey = base64url.encode(key);
    const box = SecretBox.fromConfig({ dataDir, masterKey });
    expect(existsSync(join(dataDir, "master.key"))).toBe(false);
    expect(box.keyId).toBe(new SecretBox(key).keyId);
    const jwe = await box.encrypt({ token: SECRET }, alice);
    expect(await new SecretBox(key).decrypt(jwe, alice)).toEqual({ token: SECRET });
  });

  test("a malformed TURNKEY_MASTER_KEY is a ConfigError", () => {
    expect(() => loadMasterKey({ dataDir, masterKey: "c2hvcnQ" })).toThrow(ConfigError);
    expect(() => new SecretBox(new Uint8Array(16))).toThrow(ConfigError);
  });

  test("wrong master key → 503 store_unavailable, message free of secrets", async () => {
    const jwe = await SecretBox.fromConfig({ dataDir }).encrypt({ token: SECRET }, alice);
    const otherKey = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
    const err = await decryptError(SecretBox.fromConfig({ dataDir, masterKey: otherKey }).decrypt(jwe, alice));
    expect(err.status).toBe(503);
    expect(err.code).toBe("store_unavailable");
    expect(err.message).toMatch(/different master key/);
    for (const s of [SECRET, otherKey, jwe, jwe.split(".")[3]!]) expect(err.message).not.toContain(s);
    expect(JSON.stringify(err.toJSON())).not.toContain(SECRET);
  });

  const rebinds = [
    { name: "another user's row", binding: { userId: "bob", provider: "github" } },
    { name: "another provider's row", binding: { userId: "alice", provider: "gitlab" } },
    { name: "a user ID that merely shares a prefix", binding: { userId: "alice2", provider: "github" } },
  ];
  for (const r of rebinds)
    test(`ciphertext copied to ${r.name} fails to decrypt`, async () => {
      const box = SecretBox.fromConfig({ dataDir });
      const jwe = await box.encrypt({ token: SECRET }, alice);
      const err = await decryptError(box.decrypt(jwe, r.binding));
      expect(err.code).toBe("store_unavailable");
      expect(err.message).not.toContain(SECRET);
    });

  test("a rewritten header (claiming bob's row) fails authentication", async () => {
    const box = SecretBox.fromConfig({ dataDir });
    const jwe = await box.encrypt({ token: SECRET }, alice);
    const parts = jwe.split(".");
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(parts[0]!)));
    parts[0] = base64url.encode(JSON.stringify({ ...header, uid: "bob" }));
    const err = await decryptError(box.decrypt(parts.join("."), { userId: "bob", provider: "github" }));
    expect(err.code).toBe("store_unavailable");
    expect(err.message).toMatch(/corrupted or altered/);
  });

  test("garbage ciphertext → 503", async () => {
    const box = SecretBox.fromConfig({ dataDir });
    expect((await decryptError(box.decrypt("not-a-jwe", alice))).status).toBe(503);
  });
});
