/**
 * End to end, issue 4 §4: user JWTs verified against the cluster's service-account issuer found by
 * OIDC discovery (`TURNKEY_OIDC_DISCOVERY=serviceaccount`, `TURNKEY_JWT_ISSUER` pinned), with the
 * gateway as a child process on the Kubernetes backend and the fake API server over TLS.
 * Discovery failing is 503 (never a fallback); service-account tokens still go to TokenReview.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from "jose";
import { KUBE_PATHS, makeTestPki, startFakeKubeApi, type FakeKubeApi, type TestPki } from "../helpers/fake-kube-api.ts";
import { startGatewayProcess, type GatewayProcess } from "../helpers/gateway-process.ts";

const ISSUER = "https://kubernetes.default.svc.cluster.local";
const BOB_GH = "ghp_oidc_bob_22222222222222222222222222222";
const GH = "/api/projects/demo/agentic-sessions/pairing/credentials/github";

let pki: TestPki;
let api: FakeKubeApi;
let gw: GatewayProcess;
let clusterKey: CryptoKey;

const jwt = (claims: JWTPayload, key: CryptoKey = clusterKey, kid = "sa-key-1") =>
  new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid }).setIssuer(ISSUER).setAudience("turnkey").setIssuedAt().setExpirationTime("5m").sign(key);

beforeAll(async () => {
  const pair = await generateKeyPair("ES256");
  clusterKey = pair.privateKey;
  pki = makeTestPki(mkdtempSync(join(tmpdir(), "turnkey-e2e-oidc-pki-")));
  api = startFakeKubeApi({ pki });
  api.oidc.issuer = ISSUER;
  api.oidc.jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "sa-key-1", alg: "ES256", use: "sig" }] };
  api.sessions.set("demo/pairing", {
    apiVersion: "vteam.ambient-code/v1alpha1",
    kind: "AgenticSession",
    metadata: { name: "pairing", namespace: "demo" },
    spec: { userContext: { userId: "alice@example.com" } },
  });
  api.allowed.add("bob@example.com|demo|agenticsessions|pairing|update");
  api.serviceAccounts.set("demo/ambient-session-pairing", { labels: { app: "ambient-runner" } });
  api.secrets.set("ambient-code/github-pat-credentials", { "bob-example.com": JSON.stringify({ token: BOB_GH }) });
  api.fail("/.well-known/openid-configuration", 500); // down at start: the first test needs it so
  gw = await startGatewayProcess({
    KUBECONFIG: api.kubeconfigPath,
    NODE_EXTRA_CA_CERTS: pki.caFile,
    TURNKEY_BACKEND: "kubernetes",
    TURNKEY_TOKEN_AUDIENCES: "turnkey",
    TURNKEY_KUBE_TIMEOUT_MS: "700",
    TURNKEY_OIDC_DISCOVERY: "serviceaccount",
    TURNKEY_JWT_ISSUER: ISSUER,
    TURNKEY_RUNNER_COMMAND: JSON.stringify([process.execPath, resolve(import.meta.dir, "../fixtures/runners/whoami.ts")]),
  });
});
afterAll(async () => {
  await gw?.stop();
  await api?.stop();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

describe("user JWTs from the cluster's service-account issuer (discovery)", () => {
  test("discovery failing → 503 identity_unavailable, no TokenReview fallback; once it answers the same token works", async () => {
    const token = await jwt({ sub: "u-1", preferred_username: "bob@example.com" });
    const bob = { token, headers: { "X-Runner-Current-User": "bob-example.com" } };
    try {
      const down = await gw.api("GET", GH, bob);
      expect([down.status, down.body.code]).toEqual([503, "identity_unavailable"]);
      // The start-up attempt told the operator why (the cause, not a bare 503).
      const logged = /"reason":"openid-configuration answered HTTP 500".*oidc discovery failed/;
      for (let end = Date.now() + 5000; !logged.test(gw.log()) && Date.now() < end; ) await Bun.sleep(20);
      expect(gw.log()).toMatch(logged);
      // …and so does the request that got the 503, once (rate-limited), with the cause.
      expect(gw.log()).toMatch(/"code":"identity_unavailable","reason":"openid-configuration answered HTTP 500".*dependency unavailable/);
    } finally {
      api.clearFaults();
    }
    expect(api.count(KUBE_PATHS.tokenReviews)).toBe(0);
    const up = await gw.api("GET", GH, bob);
    expect([up.status, up.body.token]).toEqual([200, BOB_GH]);
    // Verified locally; the JWKS was fetched with the pod's token; the SAR used the raw username.
    expect(api.count(KUBE_PATHS.tokenReviews)).toBe(0);
    expect(api.log.jwksAuth.at(-1)).toBe(`Bearer ${api.token}`);
    expect((api.log.sars as { user?: string }[]).map((s) => s.user)).toContain("bob@example.com");
  });

  test("a token signed by another key, or for another audience, is 401", async () => {
    const other = await generateKeyPair("ES256");
    expect((await gw.api("GET", GH, { token: await jwt({ preferred_username: "bob@example.com" }, other.privateKey, "rogue") })).status).toBe(401);
    const wrongAud = await new SignJWT({ preferred_username: "bob@example.com" }).setProtectedHeader({ alg: "ES256", kid: "sa-key-1" }).setIssuer(ISSUER).setAudience("https://kubernetes.default.svc").setExpirationTime("5m").sign(clusterKey);
    expect((await gw.api("GET", GH, { token: wrongAud })).status).toBe(401);
  });

  test("a service-account token from the same issuer goes to TokenReview and stays a service principal", async () => {
    const saToken = await jwt({ sub: "system:serviceaccount:demo:ambient-session-pairing" });
    api.tokens.set(saToken, { username: "system:serviceaccount:demo:ambient-session-pairing" });
    api.resetCounts();
    // No active run: a runner account gets nothing, whoever it names (it is never the owner or bob).
    const r = await gw.api("GET", GH, { token: saToken, headers: { "X-Runner-Current-User": "bob-example.com" } });
    expect(r.status).toBe(403);
    expect(api.count(KUBE_PATHS.tokenReviews)).toBe(1);
  });
});
