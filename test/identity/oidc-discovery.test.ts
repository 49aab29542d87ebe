/**
 * OIDC Discovery for an external IdP (src/identity/oidc-discovery.ts): a loopback fake IdP serves
 * `/.well-known/openid-configuration` and a JWKS; the real jose key set and the JwtAuthenticator
 * verify its tokens. Unit rules (URLs, loopback) are table tests; then the whole gateway.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, type JWTPayload } from "jose";
import { discoverIssuer, discoveryUrl, isLoopbackHttp, memoiseDiscovery } from "../../src/identity/oidc-discovery.ts";
import { JwtAuthenticator } from "../../src/identity/jwt.ts";
import { defaultConfig } from "../../src/config.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { openWs } from "../helpers/streams.ts";
import { errorOf, nowSec, sign } from "./helpers.ts";

describe("discoveryUrl (OIDC Discovery §4)", () => {
  test.each([
    ["https://idp.example", "https://idp.example/.well-known/openid-configuration"],
    ["https://idp.example/", "https://idp.example/.well-known/openid-configuration"],
    ["https://idp.example/realms/acme", "https://idp.example/realms/acme/.well-known/openid-configuration"],
    ["https://idp.example/realms/acme/", "https://idp.example/realms/acme/.well-known/openid-configuration"],
  ])("%s → %s", (issuer, want) => {
    expect(discoveryUrl(issuer).href).toBe(want);
  });
});

describe("isLoopbackHttp", () => {
  test.each([
    ["http://127.0.0.1:9000/x", true],
    ["http://127.1.2.3/", true],
    ["http://localhost:8080", true],
    ["http://[::1]:80/", true],
    ["https://127.0.0.1/", false],
    ["http://10.0.0.1/", false],
    ["http://127.0.0.1.evil.example/", false],
    ["http://localhost.evil.example/", false],
  ])("%s → %p", (url, want) => {
    expect(isLoopbackHttp(new URL(url))).toBe(want);
  });
});

/** A fake IdP: what its discovery document says is switchable per test. */
function fakeIdp() {
  const state = {
    mode: "ok" as "ok" | "500" | "junk" | "missing" | "other-issuer" | "plain-jwks" | "down",
    docHits: 0,
  };
  let keys: object[] = [];
  let pair!: Awaited<ReturnType<typeof generateKeyPair>>;
  let issuer = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req): Response => {
      const path = new URL(req.url).pathname;
      if (state.mode === "down") return new Response("", { status: 503 });
      if (path === "/realms/acme/.well-known/openid-configuration") {
        state.docHits++;
        if (state.mode === "500") return new Response("oops", { status: 500 });
        if (state.mode === "junk") return new Response("{not json", { headers: { "content-type": "application/json" } });
        if (state.mode === "missing") return Response.json({ issuer });
        return Response.json({
          issuer: state.mode === "other-issuer" ? "https://evil.example/realms/acme" : issuer,
          jwks_uri: state.mode === "plain-jwks" ? "http://idp.example/realms/acme/certs" : `${issuer}/certs`,
          id_token_signing_alg_values_supported: ["ES256"],
        });
      }
      if (path === "/realms/acme/certs") return Response.json({ keys });
      return new Response("not found", { status: 404 });
    },
  });
  issuer = `http://127.0.0.1:${server.port}/realms/acme`;
  return {
    state,
    issuer,
    stop: () => server.stop(true),
    async init() {
      pair = await generateKeyPair("ES256");
      keys = [{ ...(await exportJWK(pair.publicKey)), kid: "idp-1", alg: "ES256", use: "sig" }];
    },
    /** A token as the IdP would sign it (Keycloak-like claims). */
    token: (claims: JWTPayload = {}) =>
      sign(pair.privateKey, { alg: "ES256", kid: "idp-1", typ: "JWT" }, { iss: issuer, aud: "turnkey", preferred_username: "erin", name: "Erin", exp: nowSec() + 300, ...claims }),
  };
}

describe("discoverIssuer against a loopback IdP", () => {
  const idp = fakeIdp();
  beforeAll(() => idp.init());
  afterAll(() => idp.stop());
  beforeEach(() => (idp.state.mode = "ok"));
  const unavailable = { status: 503, code: "identity_unavailable" };

  test("the discovered keys verify the IdP's tokens; the issuer is pinned", async () => {
    const found = await discoverIssuer({ issuer: idp.issuer, timeoutMs: 1000 });
    expect([found.issuer, found.jwksUrl]).toEqual([idp.issuer, `${idp.issuer}/certs`]);
    const jwt = new JwtAuthenticator({ config: { jwtIssuer: idp.issuer, jwtAudience: "turnkey", userClaims: defaultConfig().userClaims }, keySource: async () => found });
    expect(await jwt.verify(await idp.token())).toMatchObject({ kind: "user", userId: "erin", userName: "Erin", source: "jwt" });
    const foreign = await idp.token({ iss: "https://evil.example" });
    expect(await errorOf(() => jwt.verify(foreign))).toEqual({ status: 401, code: "invalid_token" });
  });

  test.each([
    ["500", "the document answers 500"],
    ["junk", "the document is not JSON"],
    ["missing", "the document has no jwks_uri"],
    ["other-issuer", "the document names another issuer (Discovery §4.3)"],
    ["plain-jwks", "jwks_uri is plain http off loopback"],
  ] as const)("%s: %s → 503 identity_unavailable", async (mode) => {
    idp.state.mode = mode;
    expect(await errorOf(() => discoverIssuer({ issuer: idp.issuer, timeoutMs: 1000 }))).toEqual(unavailable);
  });

  test("an issuer nobody listens on → 503", async () => {
    const dead = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const port = dead.port;
    await dead.stop(true);
    expect(await errorOf(() => discoverIssuer({ issuer: `http://127.0.0.1:${port}/x`, timeoutMs: 1000 }))).toEqual(unavailable);
  });
});

describe("memoiseDiscovery", () => {
  test("callers share one discovery; a failure is dropped and retried", async () => {
    let calls = 0;
    let fail = true;
    const source = memoiseDiscovery(async () => {
      calls++;
      await Bun.sleep(5);
      if (fail) throw new Error("down");
      return calls;
    });
    const [a, b] = await Promise.allSettled([source(), source()]);
    expect([a.status, b.status, calls]).toEqual(["rejected", "rejected", 1]);
    fail = false;
    expect(await Promise.all([source(), source()])).toEqual([2, 2]);
    expect(await source()).toBe(2);
    expect(calls).toBe(2);
  });
});

describe("the gateway with TURNKEY_OIDC_DISCOVERY=issuer", () => {
  const idp = fakeIdp();
  let gw: TestGateway;
  beforeAll(async () => {
    await idp.init();
    idp.state.mode = "down"; // the IdP is not up yet when the gateway starts
    gw = await startGateway({ TURNKEY_OIDC_DISCOVERY: "issuer", TURNKEY_JWT_ISSUER: idp.issuer });
  });
  afterAll(async () => {
    await gw?.stop();
    idp.stop();
  });

  test("user tokens get 503 while the IdP is down, then work once it is up; dev tokens never do", async () => {
    const auth = { token: await idp.token() };
    const create = () => gw.api("POST", "/api/projects/demo/agentic-sessions", { ...auth, body: { name: "s1" } });
    expect(await create()).toMatchObject({ status: 503, body: { code: "identity_unavailable" } });
    // A WebSocket is told to try again later (1013), not that it is forbidden (1008).
    const early = await openWs(`${gw.url}/api/projects/demo/agentic-sessions/s1/agui/ws`, { token: auth.token });
    expect((await early.closed).code).toBe(1013);
    idp.state.mode = "ok";
    expect(await create()).toMatchObject({ status: 201, body: { ownerId: "erin", ownerName: "Erin" } });
    const hits = idp.state.docHits;
    expect((await gw.api("GET", "/api/projects/demo/agentic-sessions/s1", auth)).status).toBe(200);
    expect(idp.state.docHits).toBe(hits); // discovered once, then reused
    // The gateway is no development issuer now: its own dev key set is not trusted.
    expect((await gw.api("GET", "/api/projects/demo/agentic-sessions/s1", { token: await gw.token("erin") })).status).toBe(401);
  });
});
