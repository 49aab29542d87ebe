import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { KUBE_PATHS, type FakeKubeApi } from "../../helpers/fake-kube-api.ts";
import type { KubernetesBackend } from "../../../src/kubernetes/backend.ts";
import { TurnkeyError } from "../../../src/errors.ts";
import { tokenDigest } from "../../../src/identity/token-review.ts";
import { startBackend } from "./setup.ts";

let api: FakeKubeApi;
let kube: KubernetesBackend;
let clock = 1_700_000_000_000;

beforeAll(async () => {
  ({ api, kube } = await startBackend({ tokenAudiences: ["turnkey"], now: () => clock }));
});
afterAll(() => api.stop());
beforeEach(async () => {
  await kube.close();
  api.clearFaults();
  api.resetCounts();
  api.tokens.clear();
  api.serviceAccounts.clear();
  api.log.tokenReviews.length = 0;
});

const auth = (token: string) => kube.authenticators[0]!.authenticate({ headers: new Headers({ authorization: `Bearer ${token}` }) });
async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (e) {
    return e instanceof TurnkeyError ? `${e.status} ${e.code}` : String(e);
  }
}
/** An unsigned JWT-shaped token (TokenReview, not us, judges its signature). */
const jwtLike = (claims: Record<string, unknown>) =>
  `${Buffer.from('{"alg":"RS256"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2ln`;

describe("TokenReviewAuthenticator", () => {
  test("runner SA (app=ambient-runner, ambient-session-<s>) → service bound to its project/session, never the owner", async () => {
    api.tokens.set("runner-tok", { username: "system:serviceaccount:proj:ambient-session-s1" });
    api.serviceAccounts.set("proj/ambient-session-s1", { labels: { app: "ambient-runner" } });
    expect(await auth("runner-tok")).toEqual({ kind: "service", name: "system:serviceaccount:proj:ambient-session-s1", project: "proj", session: "s1" });
    expect(api.count(KUBE_PATHS.serviceAccount("proj", "ambient-session-s1"))).toBe(1);
  });

  test("access-key SA with created-by annotation → that user, access-reviewed as the key's service account", async () => {
    api.tokens.set("key-tok", { username: "system:serviceaccount:proj:ak-123", groups: ["system:serviceaccounts"] });
    api.serviceAccounts.set("proj/ak-123", { labels: { app: "ambient-access-key" }, annotations: { "ambient-code.io/created-by-user-id": "bob@example.com" } });
    expect(await auth("key-tok")).toEqual({
      kind: "user",
      userId: "bob-example.com",
      userName: "bob-example.com",
      source: "kubernetes",
      username: "system:serviceaccount:proj:ak-123",
      groups: ["system:serviceaccounts"],
      uid: "uid-1",
    });
  });

  // Anything but a well-formed runner or access-key account is no caller of Turnkey: a wider
  // fallback identity let `default` or a broken key read credentials across the project.
  test.each([
    ["an access key without its annotation", "proj", "ak-9", { labels: { app: "ambient-access-key" } }],
    ["an access key whose annotation sanitises to nothing", "proj", "ak-10", { labels: { app: "ambient-access-key" }, annotations: { "ambient-code.io/created-by-user-id": "@@@" } }],
    ["an unlabelled account (default)", "proj", "default", {}],
    ["another app's account", "ops", "deployer", { labels: { app: "something" } }],
    ["a runner label on a name that is not ambient-session-<s>", "proj", "impostor", { labels: { app: "ambient-runner" } }],
    ["a runner name with an invalid session", "proj", "ambient-session-Bad_Name", { labels: { app: "ambient-runner" } }],
    ["a deleted account (404)", "proj", "ambient-session-gone", undefined],
  ] as const)("%s → 401", async (_n, ns, name, meta) => {
    api.tokens.set(`tok-${name}`, { username: `system:serviceaccount:${ns}:${name}` });
    if (meta) api.serviceAccounts.set(`${ns}/${name}`, meta as never);
    expect(await code(auth(`tok-${name}`))).toBe("401 invalid_token");
  });

  test("an account Turnkey may not read (403: another namespace) → 401, not a fallback", async () => {
    api.tokens.set("tok-foreign", { username: "system:serviceaccount:elsewhere:ambient-session-s1" });
    api.fail(KUBE_PATHS.serviceAccount("elsewhere", "ambient-session-s1"), 403);
    expect(await code(auth("tok-foreign"))).toBe("401 invalid_token");
    api.clearFaults();
  });

  test("a review without status.audiences, when audiences were asked, is not for us → 401", async () => {
    api.tokens.set("aud-none", { username: "dave", audiences: [] });
    expect(await code(auth("aud-none"))).toBe("401 invalid_token");
  });

  test("a human user → user principal: sanitised ID, original name, original username and groups for access reviews", async () => {
    api.tokens.set("human", { username: "oidc:Carol@Example.com", groups: ["devs"] });
    expect(await auth("human")).toEqual({
      kind: "user",
      userId: "oidc-Carol-Example.com",
      userName: "oidc:Carol@Example.com",
      source: "kubernetes",
      username: "oidc:Carol@Example.com",
      groups: ["devs"],
      uid: "uid-1",
    });
  });

  test("the review's user.uid and user.extra are kept on the principal for access reviews", async () => {
    api.tokens.set("scoped", { username: "dora", uid: "u-7", extra: { "scopes.authorization.openshift.io": ["user:info"] } });
    expect(await auth("scoped")).toMatchObject({ kind: "user", username: "dora", uid: "u-7", extra: { "scopes.authorization.openshift.io": ["user:info"] } });
  });

  test("reviews carry spec.audiences = TURNKEY_TOKEN_AUDIENCES; a token for another audience is 401", async () => {
    api.tokens.set("aud-tok", { username: "dave", audiences: ["https://kubernetes.default.svc"] });
    expect(await code(auth("aud-tok"))).toBe("401 invalid_token");
    expect(api.log.tokenReviews[0]).toEqual({ audiences: ["turnkey"] });
  });

  test("unknown token → 401 invalid_token", async () => {
    expect(await code(auth("nope"))).toBe("401 invalid_token");
  });

  for (const fault of [403, 500, "hang"] as const) {
    test(`TokenReview ${fault} → 503 identity_unavailable, not cached`, async () => {
      api.tokens.set("t1", { username: "erin" });
      api.fail(KUBE_PATHS.tokenReviews, fault);
      expect(await code(auth("t1"))).toBe("503 identity_unavailable");
      api.clearFaults();
      expect((await auth("t1"))?.kind).toBe("user");
    });
  }

  test("ServiceAccount lookup failing → 503 identity_unavailable (never a bot, never the owner)", async () => {
    api.tokens.set("runner-tok", { username: "system:serviceaccount:proj:ambient-session-s1" });
    api.fail("/api/v1/namespaces/proj/serviceaccounts", 500);
    expect(await code(auth("runner-tok"))).toBe("503 identity_unavailable");
  });

  test("API server unreachable → 503", async () => {
    const { startBackend: start } = await import("./setup.ts");
    const other = await start();
    other.api.tokens.set("t", { username: "x" });
    await other.api.stop();
    expect(await code(other.kube.authenticators[0]!.authenticate({ headers: new Headers({ authorization: "Bearer t" }) }))).toBe("503 identity_unavailable");
  });

  test("second call is served from cache (0 API calls), counted; expires after 60 s", async () => {
    api.tokens.set("runner-tok", { username: "system:serviceaccount:proj:ambient-session-s1" });
    api.serviceAccounts.set("proj/ambient-session-s1", { labels: { app: "ambient-runner" } });
    const before = kube.metrics();
    await auth("runner-tok");
    await auth("runner-tok");
    expect(api.count(KUBE_PATHS.tokenReviews)).toBe(1);
    expect(api.count(KUBE_PATHS.serviceAccount("proj", "ambient-session-s1"))).toBe(1);
    const m = kube.metrics();
    expect(m["kube.token_reviews.cache_hits"]! - before["kube.token_reviews.cache_hits"]!).toBe(1);
    expect(m["kube.token_reviews.cache_misses"]! - before["kube.token_reviews.cache_misses"]!).toBe(1);
    clock += 60_001;
    await auth("runner-tok");
    expect(api.count(KUBE_PATHS.tokenReviews)).toBe(2);
  });

  test("cache lifetime is capped by the token's exp", async () => {
    const tok = jwtLike({ iss: "https://kubernetes.default.svc.cluster.local", sub: "system:serviceaccount:proj:ambient-session-x", exp: Math.floor(clock / 1000) + 5 });
    api.tokens.set(tok, { username: "system:serviceaccount:proj:ambient-session-x" });
    api.serviceAccounts.set("proj/ambient-session-x", { labels: { app: "ambient-runner" } });
    await auth(tok);
    clock += 4_000;
    await auth(tok);
    expect(api.count(KUBE_PATHS.tokenReviews)).toBe(1);
    clock += 2_000;
    api.tokens.delete(tok); // expired: the API server no longer accepts it
    expect(await code(auth(tok))).toBe("401 invalid_token");
    expect(api.count(KUBE_PATHS.tokenReviews)).toBe(2);
  });

  test("the cache key is the token's SHA-256, never the raw token", async () => {
    expect(tokenDigest("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  test("JWTs of skipped issuers (user IdP, turn tokens) are passed on and never sent to the API server", async () => {
    const userJwt = jwtLike({ iss: "turnkey-dev", sub: "alice", exp: 9e9 });
    const turnJwt = jwtLike({ iss: "turnkey", sub: "alice", exp: 9e9 });
    expect(await auth(userJwt)).toBeNull();
    expect(await auth(turnJwt)).toBeNull();
    expect(api.count(KUBE_PATHS.tokenReviews)).toBe(0);
  });

  test("…but a service-account JWT is always reviewed, whatever its issuer", async () => {
    const saJwt = jwtLike({ iss: "turnkey-dev", sub: "system:serviceaccount:proj:ambient-session-s1", exp: 9e9 });
    api.tokens.set(saJwt, { username: "system:serviceaccount:proj:ambient-session-s1" });
    api.serviceAccounts.set("proj/ambient-session-s1", { labels: { app: "ambient-runner" } });
    expect((await auth(saJwt))?.kind).toBe("service");
  });

  test("no Authorization header → null; works as a createAuthenticator member", async () => {
    const a = kube.authenticators[0]!;
    expect(await a.authenticate({ headers: new Headers() })).toBeNull();
    expect(a.name).toBe("kubernetes");
    api.tokens.set("m", { username: "frank" });
    expect((await a.authenticateBearer("m", { headers: new Headers() }))?.kind).toBe("user");
  });
});
