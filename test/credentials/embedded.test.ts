import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { base64url } from "jose";
import { TurnkeyError } from "../../src/errors.ts";
import type { CredentialRecords } from "../../src/credentials/types.ts";
import type { ProviderName } from "../../src/credentials/providers.ts";
import { openEmbeddedStores, type EmbeddedStores } from "../../src/store/index.ts";
import { openDatabase, closeDatabase } from "../../src/store/sqlite.ts";

let dataDir: string;
let stores: EmbeddedStores;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "turnkey-creds-"));
  stores = openEmbeddedStores({ dataDir });
});
afterEach(() => {
  stores.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const TOKENS = {
  github: "ghp_PLAINTEXTgithubToken0123456789abcdef",
  gitlab: "glpat-PLAINTEXTgitlabToken98765",
  jira: "ATATT3xPLAINTEXTjiraApiToken",
  googleAccess: "ya29.PLAINTEXTgoogleAccessToken",
  googleRefresh: "1//PLAINTEXTgoogleRefreshToken",
  coderabbit: "cr-PLAINTEXTcoderabbitKey",
  gerrit: "PLAINTEXTgerritHttpPassword",
};
const RECORDS: { [P in ProviderName]: CredentialRecords[P] } = {
  github: { token: TOKENS.github, userName: "Alice", email: "alice@example.com" },
  gitlab: { token: TOKENS.gitlab, instanceUrl: "https://gitlab.example.com" },
  jira: { url: "https://acme.atlassian.net", email: "alice@acme.com", apiToken: TOKENS.jira },
  google: { accessToken: TOKENS.googleAccess, refreshToken: TOKENS.googleRefresh, email: "alice@gmail.com", scopes: ["s1"], expiresAt: "2030-01-01T00:00:00Z" },
  coderabbit: { apiKey: TOKENS.coderabbit },
  gerrit: { instances: [{ name: "r", url: "https://review.example.com", username: "alice", httpPassword: TOKENS.gerrit }] },
};
const PROVIDERS = Object.keys(RECORDS) as ProviderName[];

async function putAll(user: string) {
  for (const p of PROVIDERS) await stores.credentials.put(user, p, RECORDS[p] as never);
}

async function failure(p: Promise<unknown>): Promise<TurnkeyError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TurnkeyError);
    return e as TurnkeyError;
  }
  throw new Error("expected a TurnkeyError");
}

describe("EmbeddedCredentialStore", () => {
  test("put/get round-trips every provider; missing is null", async () => {
    expect(stores.credentials.readOnly).toBe(false);
    await putAll("alice");
    for (const p of PROVIDERS) expect(await stores.credentials.get("alice", p)).toEqual(RECORDS[p] as never);
    expect(await stores.credentials.get("bob", "github")).toBeNull();
    expect(await stores.credentials.get("", "github")).toBeNull();
  });

  test("put replaces; delete reports whether it existed", async () => {
    await stores.credentials.put("alice", "github", { token: "ghp_one" });
    await stores.credentials.put("alice", "github", { token: "ghp_two" });
    expect(await stores.credentials.get("alice", "github")).toEqual({ token: "ghp_two" });
    expect(await stores.credentials.delete("alice", "github")).toBe(true);
    expect(await stores.credentials.delete("alice", "github")).toBe(false);
    expect(await stores.credentials.get("alice", "github")).toBeNull();
  });

  test("list gives providers and timestamps only, never values", async () => {
    await putAll("alice");
    await stores.credentials.put("bob", "jira", RECORDS.jira);
    const list = await stores.credentials.list("alice");
    expect(list.map((s) => s.provider)).toEqual([...PROVIDERS].sort());
    for (const s of list) {
      expect(Object.keys(s).sort()).toEqual(["provider", "updatedAt"]);
      expect(Number.isNaN(Date.parse(s.updatedAt))).toBe(false);
    }
    const text = JSON.stringify(list);
    for (const t of Object.values(TOKENS)) expect(text).not.toContain(t);
    expect(await stores.credentials.list("carol")).toEqual([]);
  });

  test("unknown provider and empty user are rejected on write", async () => {
    expect((await failure(stores.credentials.put("alice", "mcp" as never, {} as never))).code).toBe("unknown_provider");
    expect((await failure(stores.credentials.get("alice", "nope" as never))).code).toBe("unknown_provider");
    expect((await failure(stores.credentials.put("", "github", { token: "x" }))).status).toBe(400);
  });

  test("no plaintext token in the sqlite file or its WAL, while open and after close", async () => {
    await putAll("alice");
    await putAll("bob");
    await stores.credentials.put("alice", "github", { token: TOKENS.github + "-v2" }); // an update, too
    const needles = Object.values(TOKENS).flatMap((t) => [t, base64url.encode(t), Buffer.from(t).toString("hex")]);
    const check = (file: string) => {
      if (!existsSync(file)) return 0;
      const bytes = readFileSync(file);
      for (const n of needles) expect({ file, found: bytes.includes(Buffer.from(n)) }).toEqual({ file, found: false });
      return bytes.length;
    };
    const wal = join(dataDir, "turnkey.db-wal");
    expect(existsSync(wal)).toBe(true);
    const seen = check(join(dataDir, "turnkey.db")) + check(wal);
    expect(seen).toBeGreaterThan(0);
    // sanity: the user IDs (not secret) are in there, so we really read the data pages
    expect(Buffer.concat([readFileSync(join(dataDir, "turnkey.db")), readFileSync(wal)]).includes(Buffer.from("alice"))).toBe(true);
    stores.close();
    check(join(dataDir, "turnkey.db"));
    check(wal);
    stores = openEmbeddedStores({ dataDir });
    expect(await stores.credentials.get("bob", "coderabbit")).toEqual(RECORDS.coderabbit);
  });

  test("a ciphertext copied into another user's row fails closed (503), not bob getting alice's token", async () => {
    await stores.credentials.put("alice", "github", RECORDS.github);
    await stores.credentials.put("bob", "github", { token: "ghp_bobs_own" });
    const db = openDatabase(dataDir); // a second connection, like an attacker with file access
    db.run(
      "UPDATE credentials SET ciphertext = (SELECT ciphertext FROM credentials WHERE user_id = 'alice' AND provider = 'github') WHERE user_id = 'bob' AND provider = 'github'",
    );
    db.run(
      "INSERT INTO credentials SELECT user_id, 'gitlab', ciphertext, updated_at FROM credentials WHERE user_id = 'alice' AND provider = 'github'",
    );
    closeDatabase(db);
    const moved = await failure(stores.credentials.get("bob", "github"));
    expect([moved.status, moved.code]).toEqual([503, "store_unavailable"]);
    expect(moved.message).not.toContain(TOKENS.github);
    const reprovided = await failure(stores.credentials.get("alice", "gitlab"));
    expect(reprovided.code).toBe("store_unavailable");
    expect(await stores.credentials.get("alice", "github")).toEqual(RECORDS.github);
  });

  test("wrong master key → 503 store_unavailable without any secret in the message", async () => {
    await putAll("alice");
    stores.close();
    const masterKey = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
    stores = openEmbeddedStores({ dataDir, masterKey });
    for (const p of PROVIDERS) {
      const err = await failure(stores.credentials.get("alice", p));
      expect([err.status, err.code]).toEqual([503, "store_unavailable"]);
      const wire = JSON.stringify(err.toJSON()) + err.message + String(err.stack);
      for (const s of [...Object.values(TOKENS), masterKey]) expect(wire).not.toContain(s);
    }
    // listing needs no key
    expect((await stores.credentials.list("alice")).length).toBe(PROVIDERS.length);
  });

  test("TURNKEY_MASTER_KEY works across reopen without a key file", async () => {
    rmSync(dataDir, { recursive: true, force: true });
    const masterKey = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
    stores.close();
    stores = openEmbeddedStores({ dataDir, masterKey });
    await stores.credentials.put("alice", "coderabbit", RECORDS.coderabbit);
    stores.close();
    stores = openEmbeddedStores({ dataDir, masterKey });
    expect(await stores.credentials.get("alice", "coderabbit")).toEqual(RECORDS.coderabbit);
    expect(existsSync(join(dataDir, "master.key"))).toBe(false);
  });

  test("after close, reads fail with 503 store_unavailable", async () => {
    stores.close();
    stores.close();
    expect((await failure(stores.credentials.list("alice"))).code).toBe("store_unavailable");
    expect((await failure(stores.sessions.get("p", "s"))).code).toBe("store_unavailable");
    stores = openEmbeddedStores({ dataDir });
  });
});
