import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { defaultConfig } from "../../src/config.ts";
import { DevIssuer } from "../../src/identity/dev-issuer.ts";
import { JwtAuthenticator } from "../../src/identity/jwt.ts";
import { TurnTokenIssuer } from "../../src/identity/turn-token.ts";
import { BotTokenAuthenticator } from "../../src/identity/bot-tokens.ts";
import { ForwardedHeadersAuthenticator } from "../../src/identity/forwarded.ts";
import { bearerToken, createAuthenticator, looksLikeTurnToken, type BearerAuthenticator } from "../../src/identity/authenticate.ts";
import type { Authenticator } from "../../src/identity/principal.ts";
import { DEV_ISSUER_KEY_FILE, loadOrCreateSigningKey } from "../../src/identity/keys.ts";
import { unavailable } from "../../src/errors.ts";
import { errorOf, nowSec, sign, tempDir } from "./helpers.ts";

const BOT = "bot-token-0123456789abcdef";
const cfg = defaultConfig();

let t: ReturnType<typeof tempDir>;
let dev: DevIssuer;
let turns: TurnTokenIssuer;
let auth: Authenticator;
beforeEach(async () => {
  t = tempDir();
  dev = await DevIssuer.open({ dataDir: t.dir, jwtIssuer: cfg.jwtIssuer, jwtAudience: cfg.jwtAudience });
  turns = await TurnTokenIssuer.open({ dataDir: t.dir });
  auth = createAuthenticator({
    turnTokens: turns,
    jwt: new JwtAuthenticator({ config: cfg, devIssuer: dev }),
    botTokens: BotTokenAuthenticator.parse(`ci:${BOT}`),
    forwarded: new ForwardedHeadersAuthenticator(["127.0.0.1"]),
  });
});
afterEach(() => t.cleanup());

const req = (headers: Record<string, string>, remoteAddress?: string) => ({ headers: new Headers(headers), ...(remoteAddress ? { remoteAddress } : {}) });
const bearer = (token: string, extra: Record<string, string> = {}, remoteAddress?: string) => req({ authorization: `Bearer ${token}`, ...extra }, remoteAddress);
const invalid = { status: 401, code: "invalid_token" };
const turnInput = () => ({ userId: "alice", project: "p", session: "s", runId: "r1", deadline: Date.now() + 60_000 });

describe("bearerToken", () => {
  const rows: [string, string | undefined, string | null | "throws"][] = [
    ["absent", undefined, null],
    ["Bearer", "Bearer abc.def-_~+/=", "abc.def-_~+/="],
    ["scheme is case-insensitive", "bEaReR abc", "abc"],
    ["empty", "", "throws"],
    ["scheme only", "Bearer", "throws"],
    ["scheme and space", "Bearer ", "throws"],
    ["Basic", "Basic YTpi", "throws"],
    ["two tokens", "Bearer a b", "throws"],
    ["not a b64token", "Bearer a,b", "throws"],
  ];
  for (const [name, value, expected] of rows)
    test(name, async () => {
      const headers = new Headers(value === undefined ? {} : { authorization: value });
      if (expected === "throws") expect(await errorOf(async () => bearerToken(headers))).toEqual(invalid);
      else expect(bearerToken(headers)).toBe(expected);
    });
});

describe("createAuthenticator", () => {
  test("no credentials → null", async () => {
    expect(await auth.authenticate(req({}))).toBeNull();
  });

  test("user JWT → user principal", async () => {
    expect(await auth.authenticate(bearer(await dev.mint({ userId: "alice", name: "Alice" })))).toEqual({
      kind: "user", userId: "alice", userName: "Alice", source: "dev", username: "alice",
    });
  });

  test("turn token → turn principal", async () => {
    const { token, tokenId } = await turns.mint(turnInput());
    expect(await auth.authenticate(bearer(token))).toEqual({ kind: "turn", userId: "alice", project: "p", session: "s", runId: "r1", tokenId });
  });

  test("revoked turn token → 401 and no fallback to the user path", async () => {
    const { token, tokenId } = await turns.mint(turnInput());
    turns.revoke(tokenId);
    expect(await errorOf(() => auth.authenticate(bearer(token)))).toEqual(invalid);
  });

  test("a forged turn token signed with the dev key → 401", async () => {
    const key = await loadOrCreateSigningKey(t.dir, DEV_ISSUER_KEY_FILE);
    const forged = await sign(key.privateKey, { alg: "ES256", kid: key.kid, typ: "turnkey-turn+jwt" }, {
      iss: "turnkey", aud: "turnkey-credentials", sub: "alice", project: "p", session: "s", run: "r1", jti: "x", exp: nowSec() + 60,
    });
    expect(looksLikeTurnToken(forged)).toBe(true);
    expect(await errorOf(() => auth.authenticate(bearer(forged)))).toEqual(invalid);
  });

  test("a user JWT never looks like a turn token", async () => {
    expect(looksLikeTurnToken(await dev.mint({ userId: "alice" }))).toBe(false);
    expect(looksLikeTurnToken("garbage")).toBe(false);
  });

  test("bot token → service principal", async () => {
    expect(await auth.authenticate(bearer(BOT))).toEqual({ kind: "service", name: "ci" });
  });

  test("unknown opaque token → 401 invalid_token", async () => {
    expect(await errorOf(() => auth.authenticate(bearer("x".repeat(40))))).toEqual(invalid);
  });

  test("malformed Authorization → 401 even from a trusted proxy", async () => {
    expect(await errorOf(() => auth.authenticate(req({ authorization: "Basic YTpi", "x-forwarded-user": "alice" }, "127.0.0.1")))).toEqual(invalid);
  });

  test("forwarded headers: only without Authorization, only from trusted peers", async () => {
    expect(await auth.authenticate(req({ "x-forwarded-user": "alice" }, "127.0.0.1"))).toMatchObject({ kind: "user", userId: "alice", source: "forwarded" });
    expect(await auth.authenticate(req({ "x-forwarded-user": "alice" }, "10.0.0.1"))).toBeNull();
    const token = await dev.mint({ userId: "bob" });
    expect(await auth.authenticate(bearer(token, { "x-forwarded-user": "alice" }, "127.0.0.1"))).toMatchObject({ userId: "bob", source: "dev" });
  });

  test("extra members run before the JWT member, and their failures stop the chain", async () => {
    const seen: string[] = [];
    const kube: BearerAuthenticator = {
      name: "kubernetes",
      async authenticateBearer(token) {
        seen.push(token.slice(0, 4));
        if (token === "kube-down-token-0000") throw unavailable("identity provider unavailable", "identity_unavailable");
        return token.startsWith("kube-") ? { kind: "service", name: "system:serviceaccount:p:runner" } : null;
      },
    };
    const withKube = createAuthenticator({ turnTokens: turns, jwt: new JwtAuthenticator({ config: cfg, devIssuer: dev }), members: [kube] });
    expect(await withKube.authenticate(bearer("kube-sa-token-0000"))).toMatchObject({ kind: "service" });
    expect(await errorOf(() => withKube.authenticate(bearer("kube-down-token-0000")))).toEqual({ status: 503, code: "identity_unavailable" });
    expect((await withKube.authenticate(bearer(await dev.mint({ userId: "carol" }))))).toMatchObject({ userId: "carol" });
    // turn tokens never reach later members
    const { token } = await turns.mint(turnInput());
    seen.length = 0;
    await withKube.authenticate(bearer(token));
    expect(seen).toEqual([]);
  });

  test("without a JWT member an unclaimed token is 401", async () => {
    const only = createAuthenticator({ turnTokens: turns });
    expect(await errorOf(async () => only.authenticate(bearer(await dev.mint({ userId: "alice" }))))).toEqual(invalid);
  });
});
