import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createLocalJWKSet, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from "jose";
import { ConfigError, TurnkeyError } from "../../src/errors.ts";
import { defaultConfig } from "../../src/config.ts";
import { DevIssuer } from "../../src/identity/dev-issuer.ts";
import { JwtAuthenticator } from "../../src/identity/jwt.ts";
import { TurnTokenIssuer } from "../../src/identity/turn-token.ts";
import { DEV_ISSUER_KEY_FILE, loadOrCreateSigningKey, type SigningKey } from "../../src/identity/keys.ts";
import { errorOf, nowSec, sign, tamper, tempDir, unsecured } from "./helpers.ts";

const base = defaultConfig();
const claimsCfg = { jwtIssuer: base.jwtIssuer, jwtAudience: base.jwtAudience, userClaims: base.userClaims };

let t: ReturnType<typeof tempDir>;
let key: SigningKey;
let issuer: DevIssuer;
let jwt: JwtAuthenticator;
beforeEach(async () => {
  t = tempDir();
  issuer = await DevIssuer.open({ dataDir: t.dir, jwtIssuer: base.jwtIssuer, jwtAudience: base.jwtAudience });
  key = await loadOrCreateSigningKey(t.dir, DEV_ISSUER_KEY_FILE);
  jwt = new JwtAuthenticator({ config: claimsCfg, devIssuer: issuer });
});
afterEach(() => t.cleanup());

/** Claims a valid dev token carries; rows override them. */
const good = (): JWTPayload => ({ iss: "turnkey-dev", aud: "turnkey", sub: "alice", preferred_username: "alice", iat: nowSec(), exp: nowSec() + 3600 });
const es256 = () => ({ alg: "ES256", kid: key.kid, typ: "JWT" });

describe("DevIssuer", () => {
  test("mints a token the JWT authenticator accepts", async () => {
    const token = await issuer.mint({ userId: "alice", name: "Alice A.", email: "alice@example.com" });
    expect(await jwt.verify(token)).toEqual({ kind: "user", userId: "alice", userName: "Alice A.", source: "dev", username: "alice" });
  });

  test("default lifetime is 12 h; ttlSeconds overrides", async () => {
    const payload = (tok: string) => JSON.parse(Buffer.from(tok.split(".")[1]!, "base64url").toString());
    const p = payload(await issuer.mint({ userId: "alice" }));
    expect(p.exp - p.iat).toBe(12 * 3600);
    expect(p).toMatchObject({ iss: "turnkey-dev", aud: "turnkey", sub: "alice", preferred_username: "alice" });
    const q = payload(await issuer.mint({ userId: "alice", ttlSeconds: 60 }));
    expect(q.exp - q.iat).toBe(60);
  });

  test("publishes only the public key", () => {
    const { keys } = issuer.jwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toHaveProperty("d");
    expect(keys[0]!.kid).toBe(key.kid);
  });

  test("rejects an empty user ID and a bad ttl", async () => {
    await expect(issuer.mint({ userId: "" })).rejects.toBeInstanceOf(TypeError);
    await expect(issuer.mint({ userId: "a", ttlSeconds: 0 })).rejects.toBeInstanceOf(TypeError);
  });
});

describe("JwtAuthenticator with the development issuer", () => {
  type Row = [name: string, make: () => Promise<string> | string, expected: { status: number; code: string } | "ok"];
  const invalid = { status: 401, code: "invalid_token" };
  const rows: Row[] = [
    ["valid", () => sign(key.privateKey, es256(), good()), "ok"],
    ["wrong issuer", () => sign(key.privateKey, es256(), { ...good(), iss: "evil" }), invalid],
    ["wrong audience", () => sign(key.privateKey, es256(), { ...good(), aud: "other" }), invalid],
    ["turn audience", () => sign(key.privateKey, es256(), { ...good(), aud: "turnkey-credentials" }), invalid],
    ["turn audience alongside ours", () => sign(key.privateKey, es256(), { ...good(), aud: ["turnkey", "turnkey-credentials"] }), invalid],
    ["turn typ", () => sign(key.privateKey, { ...es256(), typ: "turnkey-turn+jwt" }, good()), invalid],
    ["alg none", () => unsecured(good()), invalid],
    ["HS256 keyed with the public key", () => sign(new TextEncoder().encode(JSON.stringify(key.publicJwk)), { alg: "HS256", kid: key.kid }, good()), invalid],
    ["expired beyond the 30 s tolerance", () => sign(key.privateKey, es256(), { ...good(), exp: nowSec() - 60 }), { status: 401, code: "token_expired" }],
    ["expired within the 30 s tolerance", () => sign(key.privateKey, es256(), { ...good(), exp: nowSec() - 10 }), "ok"],
    ["not yet valid beyond tolerance", () => sign(key.privateKey, es256(), { ...good(), nbf: nowSec() + 120 }), invalid],
    ["no exp", () => sign(key.privateKey, es256(), { ...good(), exp: undefined }), invalid],
    ["tampered signature", async () => tamper(await sign(key.privateKey, es256(), good())), invalid],
    ["signed by another key", async () => sign((await generateKeyPair("ES256")).privateKey, es256(), good()), invalid],
    ["garbage", () => "not.a.jwt", invalid],
    ["no usable user claim", () => sign(key.privateKey, es256(), { ...good(), sub: undefined, preferred_username: "@@" }), invalid],
  ];
  for (const [name, make, expected] of rows)
    test(name, async () => {
      const token = await make();
      if (expected === "ok") expect((await jwt.verify(token)).kind).toBe("user");
      else expect(await errorOf(() => jwt.verify(token))).toEqual(expected);
    });

  test("a real turn token is refused", async () => {
    const turns = await TurnTokenIssuer.open({ dataDir: t.dir });
    const { token } = await turns.mint({ userId: "alice", project: "p", session: "s", runId: "r", deadline: Date.now() + 60_000 });
    expect(await errorOf(() => jwt.verify(token))).toEqual(invalid);
  });

  test("authenticate(): no Authorization → null; Basic → 401", async () => {
    expect(await jwt.authenticate({ headers: new Headers() })).toBeNull();
    expect(await errorOf(() => jwt.authenticate({ headers: new Headers({ authorization: "Basic YTpi" }) }))).toEqual(invalid);
  });
});

describe("unverified email", () => {
  test.each([
    [{ email: "victim@example.com", email_verified: false }, null],
    [{ email: "victim@example.com", email_verified: "false" }, null],
    [{ email: "victim@example.com", email_verified: "FALSE" }, null],
    [{ email: "victim@example.com", email_verified: 0 }, null],
    [{ email: "victim@example.com", email_verified: null }, null],
    [{ email: "victim@example.com", email_verified: true }, "victim-example.com"],
    [{ email: "victim@example.com", email_verified: "true" }, "victim-example.com"],
    [{ email: "victim@example.com" }, "victim-example.com"], // IdPs that do not say
    [{ email: "victim@example.com", email_verified: false, sub: "u-123" }, "u-123"], // falls through to the next claim
  ])("%p → %p", async (claims, want) => {
    const token = await sign(key.privateKey, es256(), { ...good(), preferred_username: undefined, sub: undefined, ...claims });
    if (want === null) expect(await errorOf(() => jwt.verify(token))).toEqual({ status: 401, code: "invalid_token" });
    else expect((await jwt.verify(token)) as { userId: string }).toMatchObject({ userId: want });
  });
});

describe("user ID claims", () => {
  // [case, claims, user ID, user name, username (the raw claim, for access reviews)]
  const rows: [string, JWTPayload, string | null, string, string][] = [
    ["preferred_username first", { preferred_username: "alice", email: "a@x.org", sub: "s1" }, "alice", "alice", "alice"],
    ["then email, sanitised", { email: "alice@example.com", sub: "s1" }, "alice-example.com", "alice-example.com", "alice@example.com"],
    ["then sub", { sub: "u-123" }, "u-123", "u-123", "u-123"],
    ["unusable preferred_username falls through", { preferred_username: "@@@", email: "bob@x.org" }, "bob-x.org", "bob-x.org", "bob@x.org"],
    ["non-string claim skipped", { preferred_username: 42 as unknown as string, sub: "carol" }, "carol", "carol", "carol"],
    ["name claim used, control chars removed", { sub: "dave", name: "Dave\r\nX-Evil: 1" }, "dave", "DaveX-Evil: 1", "dave"],
    ["nothing usable", { email: "" }, null, "", ""],
  ];
  for (const [name, claims, id, userName, username] of rows)
    test(name, async () => {
      const token = await sign(key.privateKey, es256(), { iss: "turnkey-dev", aud: "turnkey", exp: nowSec() + 60, ...claims });
      if (id === null) expect(await errorOf(() => jwt.verify(token))).toEqual({ status: 401, code: "invalid_token" });
      else expect(await jwt.verify(token)).toEqual({ kind: "user", userId: id, userName, source: "dev", username });
    });

  test("a groups claim (strings only) is kept for access reviews", async () => {
    const token = await sign(key.privateKey, es256(), { ...good(), preferred_username: "frank", groups: ["devs", 7, "", "ops"] });
    expect(await jwt.verify(token)).toMatchObject({ userId: "frank", username: "frank", groups: ["devs", "ops"] });
  });

  test("reserved system: names: a system: user claim is refused, system: groups are dropped", async () => {
    for (const name of ["system:admin", "system:serviceaccount:demo:ambient-session-s1", "system:kube-controller-manager"]) {
      const token = await sign(key.privateKey, es256(), { ...good(), preferred_username: name });
      expect(await errorOf(() => jwt.verify(token))).toEqual({ status: 401, code: "invalid_token" });
    }
    const token = await sign(key.privateKey, es256(), { ...good(), preferred_username: "mallory", groups: ["system:masters", "system:authenticated", "devs"] });
    expect(await jwt.verify(token)).toMatchObject({ userId: "mallory", username: "mallory", groups: ["devs"] });
  });

  test("TURNKEY_JWT_USERNAME_PREFIX / GROUPS_PREFIX name the user as the API server does; the user ID stays unprefixed", async () => {
    const prefixed = new JwtAuthenticator({ config: { ...claimsCfg, jwtUsernamePrefix: "oidc:", jwtGroupsPrefix: "oidc:" }, devIssuer: issuer });
    const token = await sign(key.privateKey, es256(), { ...good(), preferred_username: "frank", groups: ["devs"] });
    expect(await prefixed.verify(token)).toMatchObject({ userId: "frank", username: "oidc:frank", groups: ["oidc:devs"] });
  });

  test("configured claim order is honoured", async () => {
    const bySub = new JwtAuthenticator({ config: { ...claimsCfg, userClaims: ["sub"] }, devIssuer: issuer });
    const token = await sign(key.privateKey, es256(), { ...good(), sub: "S", preferred_username: "P" });
    expect(await bySub.verify(token)).toMatchObject({ userId: "S" });
  });
});

describe("configuration", () => {
  test("no JWKS URL and no dev issuer → ConfigError", () => {
    expect(() => new JwtAuthenticator({ config: claimsCfg })).toThrow(ConfigError);
  });
  test("the turn-token audience cannot be the user audience", () => {
    expect(() => new JwtAuthenticator({ config: { ...claimsCfg, jwtAudience: "turnkey-credentials" }, devIssuer: issuer })).toThrow(ConfigError);
  });
});

describe("JwtAuthenticator with a remote JWKS", () => {
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
  let ec: { privateKey: CryptoKey; publicKey: CryptoKey };
  let mode: "ok" | "500" | "hang" | "junk" = "ok";
  let server: ReturnType<typeof Bun.serve>;
  let deadPort: number;
  const idp = { jwtIssuer: "https://idp.example", jwtAudience: "turnkey", userClaims: base.userClaims };

  beforeAll(async () => {
    rsa = await generateKeyPair("RS256");
    ec = await generateKeyPair("ES256");
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
      { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
    ];
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async () => {
        if (mode === "hang") return new Promise<Response>(() => {});
        if (mode === "500") return new Response("oops", { status: 500 });
        if (mode === "junk") return new Response("{not json", { headers: { "content-type": "application/json" } });
        return Response.json({ keys });
      },
    });
    const dead = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    deadPort = dead.port!;
    await dead.stop(true);
  });
  afterAll(() => server.stop(true));
  beforeEach(() => (mode = "ok"));

  const claims = () => ({ iss: idp.jwtIssuer, aud: "turnkey", sub: "user-1", email: "erin@example.com", exp: nowSec() + 300 });
  const auth = (url = `http://127.0.0.1:${server.port}/jwks`) =>
    new JwtAuthenticator({ config: { ...idp, jwksUrl: url }, jwksTimeoutMs: 300 });

  test("RS256 and ES256 tokens from the JWKS verify", async () => {
    const a = auth();
    expect(await a.verify(await sign(rsa.privateKey, { alg: "RS256", kid: "rsa-1" }, claims()))).toEqual({
      kind: "user", userId: "erin-example.com", userName: "erin-example.com", source: "jwt", username: "erin@example.com",
    });
    expect((await a.verify(await sign(ec.privateKey, { alg: "ES256", kid: "ec-1" }, claims()))).kind).toBe("user");
  });

  test("a kid the JWKS does not have is the token's fault: 401", async () => {
    const other = await generateKeyPair("RS256");
    const token = await sign(other.privateKey, { alg: "RS256", kid: "rsa-unknown" }, claims());
    expect(await errorOf(() => auth().verify(token))).toEqual({ status: 401, code: "invalid_token" });
  });

  test("PS256 (not pinned) is refused", async () => {
    const ps = await generateKeyPair("PS256");
    const token = await sign(ps.privateKey, { alg: "PS256", kid: "rsa-1" }, claims());
    expect(await errorOf(() => auth().verify(token))).toEqual({ status: 401, code: "invalid_token" });
  });

  const unavailable = { status: 503, code: "identity_unavailable" };
  for (const m of ["hang", "500", "junk"] as const)
    test(`JWKS ${m} → 503 identity_unavailable`, async () => {
      mode = m;
      const token = await sign(rsa.privateKey, { alg: "RS256", kid: "rsa-1" }, claims());
      expect(await errorOf(() => auth().verify(token))).toEqual(unavailable);
    });

  test("JWKS server down → 503 identity_unavailable", async () => {
    const token = await sign(rsa.privateKey, { alg: "RS256", kid: "rsa-1" }, claims());
    expect(await errorOf(() => auth(`http://127.0.0.1:${deadPort}/jwks`).verify(token))).toEqual(unavailable);
  });
});

describe("JwtAuthenticator with a discovered key set (keySource)", () => {
  const cluster = { jwtIssuer: "https://kubernetes.default.svc.cluster.local", jwtAudience: "turnkey", userClaims: base.userClaims };
  let pair: Awaited<ReturnType<typeof generateKeyPair>>;
  let keys: ReturnType<typeof createLocalJWKSet>;
  beforeAll(async () => {
    pair = await generateKeyPair("ES256");
    keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "sa-1", alg: "ES256" }] });
  });
  const token = (claims: JWTPayload = {}) =>
    sign(pair.privateKey, { alg: "ES256", kid: "sa-1" }, { iss: cluster.jwtIssuer, aud: "turnkey", preferred_username: "bob@example.com", exp: nowSec() + 300, ...claims });
  const unavailable = { status: 503, code: "identity_unavailable" };

  // [case, what discovery yields, claims, expected]
  const rows: [string, "ok" | "other-issuer" | "rejects" | "throws-503", JWTPayload, unknown][] = [
    ["discovered issuer = pinned issuer → user, raw username kept", "ok", {}, { kind: "user", userId: "bob-example.com", source: "jwt", username: "bob@example.com" }],
    ["discovered issuer ≠ pinned issuer → 503 (never trust an unpinned issuer)", "other-issuer", {}, unavailable],
    ["discovery rejects with a plain error → 503", "rejects", {}, unavailable],
    ["discovery rejects with its own 503 → that 503", "throws-503", {}, unavailable],
    ["token for another issuer → 401", "ok", { iss: "https://evil.example" }, { status: 401, code: "invalid_token" }],
    ["service-account subject → 401 (TokenReview classifies those, never the JWT path)", "ok", { preferred_username: "system:serviceaccount:demo:ambient-session-s1" }, { status: 401, code: "invalid_token" }],
  ];
  for (const [name, mode, claims, expected] of rows)
    test(name, async () => {
      const keySource = async () => {
        if (mode === "rejects") throw new Error("ECONNREFUSED");
        if (mode === "throws-503") throw new TurnkeyError(503, "identity_unavailable", "down");
        return { issuer: mode === "other-issuer" ? "https://elsewhere" : cluster.jwtIssuer, keys };
      };
      const a = new JwtAuthenticator({ config: cluster, keySource });
      const t = await token(claims);
      if ((expected as { kind?: string }).kind) expect(await a.verify(t)).toMatchObject(expected as object);
      else expect(await errorOf(() => a.verify(t))).toEqual(expected as { status: number; code: string });
    });
});
