import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { DevIssuer } from "../../src/identity/dev-issuer.ts";
import { TurnTokenIssuer, TURN_TOKEN_AUDIENCE } from "../../src/identity/turn-token.ts";
import { TURN_SIGNING_KEY_FILE, loadOrCreateSigningKey } from "../../src/identity/keys.ts";
import { errorOf, nowSec, sign, tamper, tempDir } from "./helpers.ts";

let t: ReturnType<typeof tempDir>;
let clock: number;
let turns: TurnTokenIssuer;
beforeEach(async () => {
  t = tempDir();
  clock = Date.now();
  turns = await TurnTokenIssuer.open({ dataDir: t.dir }, { now: () => clock });
});
afterEach(() => t.cleanup());

const input = (over: Partial<{ deadline: number }> = {}) => ({
  userId: "alice", project: "proj", session: "sess", runId: "run-1", deadline: clock + 60_000, ...over,
});
const invalid = { status: 401, code: "invalid_token" };

describe("TurnTokenIssuer", () => {
  test("mint → verify round trip", async () => {
    const { token, tokenId, expiresAt } = await turns.mint(input());
    expect(tokenId).toMatch(/^[0-9a-f-]{36}$/);
    expect(expiresAt).toBe(Math.floor((clock + 60_000) / 1000) * 1000);
    expect(await turns.verify(token)).toEqual({ userId: "alice", project: "proj", session: "sess", runId: "run-1", tokenId, expiresAt });
  });

  test("claims and header follow DESIGN §1", async () => {
    const { token, tokenId } = await turns.mint(input());
    const [h, p] = token.split(".").slice(0, 2).map((s) => JSON.parse(Buffer.from(s, "base64url").toString()));
    expect(h).toMatchObject({ alg: "ES256", typ: "turnkey-turn+jwt" });
    expect(p).toMatchObject({ iss: "turnkey", aud: TURN_TOKEN_AUDIENCE, sub: "alice", project: "proj", session: "sess", run: "run-1", jti: tokenId });
  });

  test("expired once the deadline passes (no tolerance)", async () => {
    const { token } = await turns.mint(input({ deadline: clock + 5_000 }));
    clock += 5_000;
    expect(await errorOf(() => turns.verify(token))).toEqual({ status: 401, code: "token_expired" });
  });

  test("revoked → invalid_token; other tokens unaffected", async () => {
    const a = await turns.mint(input());
    const b = await turns.mint(input({}));
    turns.revoke(a.tokenId);
    turns.revoke(a.tokenId); // idempotent
    expect(await errorOf(() => turns.verify(a.token))).toEqual(invalid);
    expect((await turns.verify(b.token)).tokenId).toBe(b.tokenId);
  });

  test("revocations are forgotten after exp (bounded memory)", async () => {
    const minted = await Promise.all(Array.from({ length: 50 }, () => turns.mint(input({ deadline: clock + 2_000 }))));
    for (const m of minted.slice(0, 25)) turns.revoke(m.tokenId);
    expect(turns.trackedCount).toBe(50);
    expect(turns.isRevoked(minted[0]!.tokenId)).toBe(true);
    clock += 3_000;
    expect(turns.isRevoked(minted[0]!.tokenId)).toBe(false);
    expect(turns.trackedCount).toBe(0);
    // still refused: as expired
    expect(await errorOf(() => turns.verify(minted[0]!.token))).toEqual({ status: 401, code: "token_expired" });
  });

  test("a token from another gateway key is refused", async () => {
    const other = await TurnTokenIssuer.open({ dataDir: join(t.dir, "other") }, { now: () => clock });
    const { token } = await other.mint(input());
    expect(await errorOf(() => turns.verify(token))).toEqual(invalid);
  });

  test("a user JWT is refused on the turn path", async () => {
    const dev = await DevIssuer.open({ dataDir: t.dir, jwtIssuer: "turnkey-dev", jwtAudience: "turnkey" });
    expect(await errorOf(async () => turns.verify(await dev.mint({ userId: "alice" })))).toEqual(invalid);
  });

  test("right key but wrong typ, iss, aud or missing claims → invalid_token", async () => {
    const key = await loadOrCreateSigningKey(t.dir, TURN_SIGNING_KEY_FILE);
    const h = { alg: "ES256", kid: key.kid, typ: "turnkey-turn+jwt" };
    const c = { iss: "turnkey", aud: TURN_TOKEN_AUDIENCE, sub: "alice", project: "p", session: "s", run: "r", jti: "j", exp: nowSec() + 60 };
    const rows: [string, Record<string, string>, Record<string, unknown>][] = [
      ["typ JWT", { ...h, typ: "JWT" }, c],
      ["iss", h, { ...c, iss: "turnkey-dev" }],
      ["aud", h, { ...c, aud: "turnkey" }],
      ["no run", h, { ...c, run: undefined }],
      ["empty project", h, { ...c, project: "" }],
      ["no jti", h, { ...c, jti: undefined }],
    ];
    for (const [name, header, claims] of rows) {
      const token = await sign(key.privateKey, header as never, claims);
      expect({ name, ...(await errorOf(() => turns.verify(token))) }).toEqual({ name, ...invalid });
    }
    expect(await errorOf(async () => turns.verify(tamper((await turns.mint(input())).token)))).toEqual(invalid);
  });

  test("mint rejects a past deadline and empty fields", async () => {
    await expect(turns.mint(input({ deadline: clock - 1 }))).rejects.toBeInstanceOf(TypeError);
    await expect(turns.mint({ ...input(), project: "" })).rejects.toBeInstanceOf(TypeError);
  });
});
