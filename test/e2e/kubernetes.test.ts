/**
 * End to end, issue 4 "Tests that must exist": the shared-session scenarios of
 * test/e2e/shared-session.test.ts with `TURNKEY_BACKEND=kubernetes`. The gateway runs as a child
 * process (`bun src/main.ts serve`, started with `NODE_EXTRA_CA_CERTS` = the test CA, which Bun
 * reads only at start) and talks through the real @kubernetes/client-node, over TLS, to the fake
 * API server this test process serves (test/helpers/fake-kube-api.ts).
 *
 * Cast: the AgenticSession `demo/pairing` is owned by alice@example.com; RBAC (the fake's
 * SubjectAccessReview answers) gives bob `update` (edit), erin `update`, carol `get` (view); dave is
 * a stranger. Users present opaque tokens the fake's TokenReview maps to those usernames; GitHub
 * tokens live in the `github-pat-credentials` Secret keyed by sanitised user ID.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KUBE_PATHS, makeTestPki, startFakeKubeApi, type FakeKubeApi, type TestPki } from "../helpers/fake-kube-api.ts";
import { startGatewayProcess, type GatewayProcess } from "../helpers/gateway-process.ts";
import { fixtureRunner as runner, parseSse } from "../helpers/gateway.ts";
import { PROVIDERS } from "../../src/credentials/providers.ts";

const sha = (v: string) => createHash("sha256").update(v).digest("hex");
const ALICE_GH = "ghp_kube_alice_000000000000000000000000";
const BOB_GH = "ghp_kube_bob_1111111111111111111111111111";
const NS = "ambient-code";
const CRED = (user: string) => `/api/projects/demo/agentic-sessions/pairing/credentials/${user}`;
const GH = CRED("github");
const T = { alice: "tok-alice", bob: "tok-bob", carol: "tok-carol", dave: "tok-dave", erin: "tok-erin", runnerSa: "tok-runner-sa", otherSa: "tok-other-sa", keyBob: "tok-key-bob", keyNoRbac: "tok-key-norbac" };
const sar = (user: string, verb: string) => `${user}|demo|agenticsessions|pairing|${verb}`;
const SA = (name: string) => `system:serviceaccount:demo:${name}`;

/** Seed the fake cluster: session CR, RBAC answers, user and service-account tokens, Secrets. */
function seed(api: FakeKubeApi): void {
  api.sessions.set("demo/pairing", {
    apiVersion: "vteam.ambient-code/v1alpha1",
    kind: "AgenticSession",
    metadata: { name: "pairing", namespace: "demo", creationTimestamp: "2025-02-03T04:05:06Z" },
    spec: { prompt: "pair", userContext: { userId: "alice@example.com", displayName: "Alice" } },
  });
  for (const u of ["alice", "bob", "carol", "dave", "erin"]) api.tokens.set(T[u as "alice"], { username: `${u}@example.com`, groups: ["system:authenticated"] });
  for (const k of [sar("bob@example.com", "update"), sar("bob@example.com", "get"), sar("erin@example.com", "update"), sar("carol@example.com", "get"), sar(SA("ak-bob"), "update")])
    api.allowed.add(k);
  api.serviceAccounts.set("demo/ambient-session-pairing", { labels: { app: "ambient-runner" } });
  api.serviceAccounts.set("demo/ambient-session-other", { labels: { app: "ambient-runner" } });
  api.serviceAccounts.set("demo/ak-bob", { labels: { app: "ambient-access-key" }, annotations: { "ambient-code.io/created-by-user-id": "bob@example.com" } });
  api.serviceAccounts.set("demo/ak-norbac", { labels: { app: "ambient-access-key" }, annotations: { "ambient-code.io/created-by-user-id": "bob@example.com" } });
  api.tokens.set(T.runnerSa, { username: SA("ambient-session-pairing") });
  api.tokens.set(T.otherSa, { username: SA("ambient-session-other") });
  api.tokens.set(T.keyBob, { username: SA("ak-bob") });
  api.tokens.set(T.keyNoRbac, { username: SA("ak-norbac") });
  api.secrets.set(`${NS}/github-pat-credentials`, {
    "alice-example.com": JSON.stringify({ token: ALICE_GH, userName: "alice" }),
    "bob-example.com": JSON.stringify({ token: BOB_GH, userName: "bob", email: "bob@example.com" }),
  });
}

/** POST a run, read the whole SSE stream. */
async function runTurn(gw: GatewayProcess, token: string, session = "pairing", signal?: AbortSignal) {
  const res = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/${session}/agui/run`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ messages: [{ id: "m1", role: "user", content: "who am I?" }] }),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, events: res.status === 200 ? parseSse(text) : [], body: res.status === 200 ? null : JSON.parse(text) };
}

const whoami = (events: any[]) => events.find((e) => e.type === "CUSTOM" && e.name === "whoami")?.value;

let pki: TestPki;
let api: FakeKubeApi;
let gw: GatewayProcess;
let slowGw: GatewayProcess;

beforeAll(async () => {
  pki = makeTestPki(mkdtempSync(join(tmpdir(), "turnkey-e2e-kube-pki-")));
  api = startFakeKubeApi({ pki });
  seed(api);
  const env = {
    KUBECONFIG: api.kubeconfigPath,
    NODE_EXTRA_CA_CERTS: pki.caFile,
    TURNKEY_BACKEND: "kubernetes",
    TURNKEY_CREDENTIALS_NAMESPACE: NS,
    TURNKEY_TOKEN_AUDIENCES: "turnkey",
    TURNKEY_KUBE_TIMEOUT_MS: "700",
  };
  [gw, slowGw] = await Promise.all([
    startGatewayProcess({ ...env, TURNKEY_RUNNER_COMMAND: runner("whoami") }),
    startGatewayProcess({ ...env, TURNKEY_RUNNER_COMMAND: runner("slow") }),
  ]);
});
afterAll(async () => {
  await Promise.all([gw?.stop(), slowGw?.stop()]);
  await api?.stop();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

describe("shared session on the kubernetes backend", () => {
  test("the gateway is ready once the API server answers /version over TLS", async () => {
    expect((await gw.api("GET", "/readyz")).status).toBe(200);
    expect(gw.log()).not.toContain("NODE_EXTRA_CA_CERTS"); // no CA warning: the variable covers the cluster CA
  });

  test("bob's turn sees only bob's token (env, file, endpoint); alice's turn sees alice's", async () => {
    const b = whoami((await runTurn(gw, T.bob)).events);
    expect(b.user).toBe("bob-example.com");
    expect(b.endpointStatus).toBe(200);
    expect([b.envToken, b.fileToken, b.endpointToken]).toEqual([sha(BOB_GH), sha(BOB_GH), sha(BOB_GH)]);
    expect(JSON.stringify(b)).not.toContain(sha(ALICE_GH));

    const a = whoami((await runTurn(gw, T.alice)).events);
    expect(a.user).toBe("alice-example.com");
    expect([a.envToken, a.fileToken, a.endpointToken]).toEqual([sha(ALICE_GH), sha(ALICE_GH), sha(ALICE_GH)]);
    expect(JSON.stringify(a)).not.toContain(sha(BOB_GH));
  });

  test("access reviews are made for the original username and groups, never the sanitised ID", () => {
    const users = (api.log.sars as { user?: string; groups?: string[] }[]).map((s) => s.user);
    expect(users).toContain("bob@example.com");
    expect(users).not.toContain("bob-example.com");
    expect(api.log.sars.find((s: any) => s.user === "bob@example.com")).toMatchObject({ groups: ["system:authenticated"] });
  });

  test("an edit collaborator without a GitHub credential gets none (no owner fallback)", async () => {
    const e = whoami((await runTurn(gw, T.erin)).events);
    expect(e.user).toBe("erin-example.com");
    expect([e.envToken, e.fileToken, e.endpointToken]).toEqual([null, null, null]);
    expect(e.endpointStatus).toBe(404);
  });

  test("view collaborator and stranger get 403 on run; unknown session 404; unknown token 401", async () => {
    for (const u of [T.carol, T.dave]) {
      const r = await runTurn(gw, u);
      expect(r.status).toBe(403);
      expect(r.body.code).toBe("forbidden");
    }
    expect((await runTurn(gw, T.bob, "nope")).status).toBe(404);
    expect((await runTurn(gw, "tok-nobody")).status).toBe(401);
  });

  test("credential endpoint with user tokens follows DESIGN §2.3", async () => {
    expect((await gw.api("GET", GH, { token: T.alice })).body).toMatchObject({ token: ALICE_GH, provider: "github" });
    expect((await gw.api("GET", GH, { token: T.alice, headers: { "X-Runner-Current-User": "bob-example.com" } })).status).toBe(403);
    const collab = await gw.api("GET", GH, { token: T.bob });
    expect(collab.status).toBe(403);
    expect(JSON.stringify(collab.body)).not.toContain(ALICE_GH);
    expect((await gw.api("GET", GH, { token: T.bob, headers: { "X-Runner-Current-User": "bob-example.com" } })).body.token).toBe(BOB_GH);
    expect((await gw.api("GET", GH, { token: T.carol, headers: { "X-Runner-Current-User": "carol-example.com" } })).status).toBe(403);
    expect((await gw.api("GET", GH, { token: T.dave, headers: { "X-Runner-Current-User": "alice-example.com" } })).status).toBe(403);
    expect((await gw.api("GET", GH)).status).toBe(401);
  });

  test("a missing Secret or key is 404 credential_not_found for every provider", async () => {
    for (const provider of PROVIDERS) {
      const r = await gw.api("GET", CRED(provider), { token: T.erin, headers: { "X-Runner-Current-User": "erin-example.com" } });
      expect([provider, r.status, r.body.code]).toEqual([provider, 404, "credential_not_found"]);
    }
  });

  test("writes are the platform's: 405 read_only_backend; listing sessions 405 method_not_allowed", async () => {
    const rows: [string, string, unknown][] = [
      ["POST", "/api/projects/demo/agentic-sessions", { name: "new" }],
      ["PUT", "/api/projects/demo/agentic-sessions/pairing/collaborators/bob", { role: "view" }],
      ["DELETE", "/api/projects/demo/agentic-sessions/pairing/collaborators/bob", undefined],
      ["PUT", "/api/users/me/credentials/github", { token: "x" }],
      ["DELETE", "/api/users/me/credentials/github", undefined],
    ];
    for (const [method, path, body] of rows) {
      const r = await gw.api(method, path, { token: T.alice, ...(body !== undefined ? { body } : {}) });
      expect([method, path, r.status, r.body.code]).toEqual([method, path, 405, "read_only_backend"]);
    }
    const list = await gw.api("GET", "/api/projects/demo/agentic-sessions", { token: T.alice });
    expect([list.status, list.body]).toEqual([405, { error: expect.any(String), code: "method_not_allowed" }]);
    expect((await gw.api("GET", "/api/projects/demo/agentic-sessions/pairing", { token: T.carol })).body).toMatchObject({ ownerId: "alice-example.com" });
  });

  test("an access-key token acts as its creator, with the key's own RBAC", async () => {
    const mine = await gw.api("GET", GH, { token: T.keyBob, headers: { "X-Runner-Current-User": "bob-example.com" } });
    expect([mine.status, mine.body.token]).toEqual([200, BOB_GH]);
    expect((await gw.api("GET", GH, { token: T.keyBob })).status).toBe(403); // effective user = owner ≠ bob
    // Same creator, but the key's service account holds no RoleBinding: no send right.
    expect((await gw.api("GET", GH, { token: T.keyNoRbac, headers: { "X-Runner-Current-User": "bob-example.com" } })).status).toBe(403);
  });
});

describe("runner service-account token", () => {
  test("is a service principal: only the active run's user, named by X-Runner-Current-User, never the owner", async () => {
    const abort = new AbortController();
    const res = await fetch(`${slowGw.url}/api/projects/demo/agentic-sessions/pairing/agui/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${T.bob}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m1", role: "user", content: "hold" }] }),
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes('"slow"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended early: ${seen}`);
      seen += new TextDecoder().decode(value);
    }
    const as = (token: string, user?: string) => slowGw.api("GET", GH, { token, ...(user ? { headers: { "X-Runner-Current-User": user } } : {}) });
    const during = await as(T.runnerSa, "bob-example.com");
    expect([during.status, during.body.token]).toEqual([200, BOB_GH]);
    expect((await as(T.runnerSa)).status).toBe(403); // effective user = owner, who has no active run
    expect((await as(T.runnerSa, "alice-example.com")).status).toBe(403);
    expect((await as(T.otherSa, "bob-example.com")).status).toBe(403); // another session's runner

    abort.abort();
    await reader.cancel().catch(() => {});
    let after = 200;
    for (let i = 0; i < 100 && after === 200; i++) {
      await Bun.sleep(50);
      after = (await as(T.runnerSa, "bob-example.com")).status;
    }
    expect(after).toBe(403);
  });
});

describe("fail closed when the API server fails", () => {
  test("Secrets answering 500: credential reads are 503 and a turn ends in RUN_ERROR before any runner starts", async () => {
    api.fail(`/api/v1/namespaces/${NS}/secrets`, 500);
    try {
      const r = await gw.api("GET", GH, { token: T.alice });
      expect([r.status, r.body.code]).toEqual([503, "store_unavailable"]);
      expect(JSON.stringify(r.body)).not.toContain(ALICE_GH);
      const turn = await runTurn(gw, T.bob);
      expect(turn.status).toBe(200);
      expect(turn.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "store_unavailable" });
      expect(whoami(turn.events)).toBeUndefined();
      expect(turn.text).not.toContain(BOB_GH);
    } finally {
      api.clearFaults();
    }
  });

  test("API server down (every call hangs past the timeout): new tokens 503 identity_unavailable, cached ones 503 on the Secret read; readiness 503", async () => {
    api.tokens.set("tok-fresh", { username: "alice@example.com" });
    api.fail("/", "hang");
    try {
      const fresh = await gw.api("GET", GH, { token: "tok-fresh" });
      expect([fresh.status, fresh.body.code]).toEqual([503, "identity_unavailable"]);
      const warm = await gw.api("GET", GH, { token: T.alice });
      expect([warm.status, warm.body.code]).toEqual([503, "store_unavailable"]);
      expect(JSON.stringify(warm.body)).not.toContain(ALICE_GH);
      expect((await gw.api("GET", "/readyz")).status).toBe(503);
    } finally {
      api.clearFaults();
    }
    expect((await gw.api("GET", GH, { token: "tok-fresh" })).body.token).toBe(ALICE_GH);
  });

});

describe("observability and cost", () => {
  test("GET /metrics: Kubernetes cache hits and misses and gateway counters, without user IDs or secrets", async () => {
    const res = await fetch(`${gw.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/plain");
    const text = await res.text();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, "\\$&")} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
    for (const cache of ["sessions", "sars", "token_reviews"]) {
      expect(value(`turnkey_kube_cache_hits_total{cache="${cache}"}`)).toBeGreaterThan(0);
      expect(value(`turnkey_kube_cache_misses_total{cache="${cache}"}`)).toBeGreaterThan(0);
    }
    expect(value("turnkey_turns_started_total")).toBeGreaterThanOrEqual(3);
    expect(value('turnkey_turns_ended_total{outcome="finished"}')).toBeGreaterThanOrEqual(3);
    expect(value('turnkey_credential_decisions_total{decision="allow",reason="turn_sender",provider="github"}')).toBeGreaterThanOrEqual(3);
    expect(value('turnkey_credential_decisions_total{decision="deny",reason="not_sender",provider="github"}')).toBeGreaterThanOrEqual(1);
    for (const leak of ["example.com", "tok-", "ghp_", "pairing"]) expect(text).not.toContain(leak);
  });

  test("a warm credential read costs exactly one Secret GET", async () => {
    await gw.api("GET", GH, { token: T.alice });
    api.resetCounts();
    expect((await gw.api("GET", GH, { token: T.alice })).status).toBe(200);
    expect(api.countPrefix("/")).toBe(1);
    expect(api.count(KUBE_PATHS.secret(NS, "github-pat-credentials"))).toBe(1);
  });
});

describe("a session deleted and created again under the same name", () => {
  test("starts empty: its participants never see the earlier incarnation's events, stored or still streaming", async () => {
    const fresh = await startGatewayProcess({
      KUBECONFIG: api.kubeconfigPath,
      NODE_EXTRA_CA_CERTS: pki.caFile,
      TURNKEY_BACKEND: "kubernetes",
      TURNKEY_CREDENTIALS_NAMESPACE: NS,
      TURNKEY_TOKEN_AUDIENCES: "turnkey",
      TURNKEY_KUBE_CACHE_TTL_MS: "0", // see the re-created object at once
      TURNKEY_RUNNER_COMMAND: runner("script"),
    });
    const cr = (uid: string, created: string) => ({
      apiVersion: "vteam.ambient-code/v1alpha1",
      kind: "AgenticSession",
      metadata: { name: "reborn", namespace: "demo", uid, creationTimestamp: created },
      spec: { userContext: { userId: "alice@example.com" } },
    });
    const path = "/api/projects/demo/agentic-sessions/reborn";
    /** Run a scripted turn: RUN_STARTED, CUSTOM events named `names` `delayMs` apart, RUN_FINISHED. */
    const run = (names: string[], delayMs: number, accept = "text/event-stream") =>
      fetch(`${fresh.url}${path}/agui/run`, {
        method: "POST",
        headers: { authorization: `Bearer ${T.alice}`, "content-type": "application/json", accept },
        body: JSON.stringify({
          messages: [{ id: `m-${names[0]}`, role: "user", content: "go" }],
          forwardedProps: {
            fixture: {
              delayMs,
              lines: [`{"type":"RUN_STARTED","threadId":"{threadId}","runId":"{runId}"}`, ...names.map((n) => JSON.stringify({ type: "CUSTOM", name: n, value: n })), `{"type":"RUN_FINISHED","threadId":"{threadId}","runId":"{runId}"}`],
            },
          },
        }),
      });
    /** What an `agui/events` stream delivers in its first `ms` (replay, then live). */
    const watch = async (ms: number) => {
      const ac = new AbortController();
      const res = await fetch(`${fresh.url}${path}/agui/events`, { headers: { authorization: `Bearer ${T.alice}` }, signal: ac.signal });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      let text = "";
      const stop = setTimeout(() => ac.abort(), ms);
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
      } catch {
        /* aborted */
      } finally {
        clearTimeout(stop);
      }
      return parseSse(text);
    };
    try {
      api.sessions.set("demo/reborn", cr("uid-first", "2025-02-03T04:05:06Z"));
      expect((await run(["old-stored"], 0)).status).toBe(200);
      expect((await watch(400)).some((e) => e.name === "old-stored")).toBe(true);
      // A slow turn of the first incarnation is still streaming when the session is re-created.
      expect((await run(["old-1", "old-2", "old-3", "old-4", "old-5", "old-6"], 500, "application/json")).status).toBe(202);
      await Bun.sleep(300);
      api.sessions.set("demo/reborn", cr("uid-second", "2025-02-03T04:05:06Z")); // same second, new object
      const seen = await watch(1500);
      expect(seen.filter((e) => String(e.name ?? "").startsWith("old-") || e.type === "RUN_STARTED")).toEqual([]);
      // The new incarnation is not busy with the old turn.
      const next = await run(["new-1"], 0);
      expect(next.status).toBe(200);
      expect(await next.text()).toContain("new-1");
    } finally {
      api.sessions.delete("demo/reborn");
      await fresh.stop();
    }
  }, 30_000);
});
