import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { KUBE_PATHS, type FakeKubeApi } from "../../helpers/fake-kube-api.ts";
import type { KubernetesBackend } from "../../../src/kubernetes/backend.ts";
import { TurnkeyError } from "../../../src/errors.ts";
import { agenticSession, startBackend } from "./setup.ts";

let api: FakeKubeApi;
let kube: KubernetesBackend;
let clock = 1_700_000_000_000;
const SAR = (user: string, verb: string, name = "s1") => `${user}|proj|agenticsessions|${name}|${verb}`;

beforeAll(async () => {
  ({ api, kube } = await startBackend({ now: () => clock }));
});
afterAll(() => api.stop());
beforeEach(async () => {
  await kube.close(); // drop caches
  api.clearFaults();
  api.resetCounts();
  api.sessions.clear();
  api.allowed.clear();
  api.log.sars.length = 0;
  api.sessions.set("proj/s1", agenticSession("proj", "s1", "alice@example.com", "Alice A."));
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (e) {
    return e instanceof TurnkeyError ? `${e.status} ${e.code}` : String(e);
  }
}

describe("KubernetesSessionStore.get", () => {
  test("maps the CR: sanitised owner, display name, no collaborators", async () => {
    const s = await kube.sessions.get("proj", "s1");
    expect(s).toEqual({ project: "proj", name: "s1", ownerId: "alice-example.com", ownerName: "Alice A.", collaborators: [], createdAt: "2025-02-03T04:05:06.000Z" });
    expect(kube.sessions.readOnly).toBe(true);
  });

  test("missing CR → null", async () => {
    expect(await kube.sessions.get("proj", "nope")).toBeNull();
  });

  test("second read within 30 s is served from cache, and counted", async () => {
    await kube.sessions.get("proj", "s1");
    await kube.sessions.get("proj", "s1");
    expect(api.count(KUBE_PATHS.session("proj", "s1"))).toBe(1);
    const m = kube.metrics();
    expect(m["kube.sessions.cache_hits"]).toBeGreaterThanOrEqual(1);
    expect(m["kube.sessions.cache_misses"]).toBeGreaterThanOrEqual(1);
    clock += 30_001;
    await kube.sessions.get("proj", "s1");
    expect(api.count(KUBE_PATHS.session("proj", "s1"))).toBe(2);
  });

  for (const fault of [403, 500, "hang"] as const) {
    test(`API ${fault} → 503 store_unavailable, not cached`, async () => {
      api.fail("/apis/vteam.ambient-code", fault);
      expect(await code(kube.sessions.get("proj", "s1"))).toBe("503 store_unavailable");
      api.clearFaults();
      expect((await kube.sessions.get("proj", "s1"))?.ownerId).toBe("alice-example.com");
    });
  }

  test("writes answer 405 read_only_backend; list is 405 method_not_allowed", async () => {
    expect(await code(kube.sessions.create("proj", "x", { userId: "a" }))).toBe("405 read_only_backend");
    expect(await code(kube.sessions.setCollaborator("proj", "s1", "bob", "edit"))).toBe("405 read_only_backend");
    expect(await code(kube.sessions.removeCollaborator("proj", "s1", "bob"))).toBe("405 read_only_backend");
    expect(await code(kube.sessions.list("proj"))).toBe("405 method_not_allowed");
  });
});

describe("KubernetesSessionStore.roleOf (SubjectAccessReview)", () => {
  const rows: { who: string; allow: string[]; role: string; sars: number }[] = [
    { who: "alice-example.com", allow: [], role: "owner", sars: 0 },
    { who: "bob", allow: ["update", "get"], role: "edit", sars: 1 },
    { who: "carol", allow: ["get"], role: "view", sars: 2 },
    { who: "mallory", allow: [], role: "none", sars: 2 },
  ];
  for (const r of rows) {
    test(`${r.who} → ${r.role} (${r.sars} SARs cold, 0 warm)`, async () => {
      for (const v of r.allow) api.allowed.add(SAR(r.who, v));
      expect(await kube.sessions.roleOf("proj", "s1", r.who)).toBe(r.role as never);
      expect(api.count(KUBE_PATHS.sars)).toBe(r.sars);
      expect(await kube.sessions.roleOf("proj", "s1", r.who)).toBe(r.role as never);
      expect(api.count(KUBE_PATHS.sars)).toBe(r.sars);
      expect(api.count(KUBE_PATHS.session("proj", "s1"))).toBe(1);
    });
  }

  test("SAR names the resource exactly: group, resource, namespace, name, verb", async () => {
    await kube.sessions.roleOf("proj", "s1", "bob");
    expect(api.log.sars[0]).toEqual({
      user: "bob",
      resourceAttributes: { namespace: "proj", verb: "update", group: "vteam.ambient-code", resource: "agenticsessions", name: "s1" },
    });
  });

  test("the original Kubernetes username and groups are reviewed when given", async () => {
    api.allowed.add("oidc:Bob@Example.com|proj|agenticsessions|s1|update");
    expect(await kube.sessions.roleOf("proj", "s1", "oidc-Bob-Example.com", { username: "oidc:Bob@Example.com", groups: ["devs"] })).toBe("edit");
    expect(api.log.sars[0]).toMatchObject({ user: "oidc:Bob@Example.com", groups: ["devs"] });
    // Cache is keyed by the subject: the sanitised ID alone is a different principal.
    expect(await kube.sessions.roleOf("proj", "s1", "oidc-Bob-Example.com")).toBe("none");
  });

  test("the TokenReview's uid and extra (a scoped token's scopes) go into the access review and its cache key", async () => {
    api.allowed.add("dora|proj|agenticsessions|s1|update");
    const scoped = { username: "dora", uid: "u-7", extra: { "scopes.authorization.openshift.io": ["user:info"] } };
    expect(await kube.sessions.roleOf("proj", "s1", "dora", scoped)).toBe("edit");
    expect(api.log.sars[0]).toMatchObject({ user: "dora", uid: "u-7", extra: { "scopes.authorization.openshift.io": ["user:info"] } });
    // The same user with other scopes is reviewed again, not served from the cache.
    await kube.sessions.roleOf("proj", "s1", "dora", { ...scoped, extra: { "scopes.authorization.openshift.io": ["user:full"] } });
    expect(api.count(KUBE_PATHS.sars)).toBe(2);
  });

  test("the owner's access key is reviewed as its service account: no RoleBindings, no access", async () => {
    const key = { username: "system:serviceaccount:proj:ak-alice", groups: ["system:serviceaccounts"] };
    expect(await kube.sessions.roleOf("proj", "s1", "alice-example.com", key)).toBe("none");
    expect(api.log.sars.map((r) => (r as { user?: string }).user)).toEqual([key.username, key.username]);
    api.allowed.add(SAR(key.username, "get"));
    clock += 30_001;
    expect(await kube.sessions.roleOf("proj", "s1", "alice-example.com", key)).toBe("view");
    // The owner herself is still the owner.
    expect(await kube.sessions.roleOf("proj", "s1", "alice-example.com", { username: "alice@example.com" })).toBe("owner");
  });

  test("the cache expires after 30 s: a revoked binding stops working", async () => {
    api.allowed.add(SAR("bob", "update"));
    expect(await kube.sessions.roleOf("proj", "s1", "bob")).toBe("edit");
    api.allowed.clear();
    expect(await kube.sessions.roleOf("proj", "s1", "bob")).toBe("edit");
    clock += 30_001;
    expect(await kube.sessions.roleOf("proj", "s1", "bob")).toBe("none");
    expect(kube.metrics()["kube.sars.cache_hits"]).toBeGreaterThanOrEqual(1);
  });

  test("missing session → none without a SAR", async () => {
    expect(await kube.sessions.roleOf("proj", "ghost", "bob")).toBe("none");
    expect(api.count(KUBE_PATHS.sars)).toBe(0);
  });

  for (const fault of [403, 500, "hang"] as const) {
    test(`SAR ${fault} → 503 store_unavailable (never none/owner)`, async () => {
      api.fail(KUBE_PATHS.sars, fault);
      expect(await code(kube.sessions.roleOf("proj", "s1", "bob"))).toBe("503 store_unavailable");
      api.clearFaults();
      api.allowed.add(SAR("bob", "update"));
      expect(await kube.sessions.roleOf("proj", "s1", "bob")).toBe("edit");
    });
  }
});
