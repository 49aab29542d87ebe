import { describe, expect, test } from "bun:test";
import { TtlCache } from "../../src/kubernetes/cache.ts";
import { classifyServiceAccount, parseServiceAccountUsername } from "../../src/identity/service-account.ts";
import { toSession } from "../../src/sessions/kubernetes.ts";
import { googleSecretKey } from "../../src/credentials/kubernetes.ts";

describe("TtlCache", () => {
  test("hits within the TTL, misses after; the per-entry TTL is capped by maxTtlMs", async () => {
    let now = 0;
    const c = new TtlCache<number>({ maxTtlMs: 1000, now: () => now });
    let loads = 0;
    const load = async () => ({ value: ++loads, ttlMs: 5000 });
    expect(await c.getOrLoad("k", load)).toBe(1);
    now = 999;
    expect(await c.getOrLoad("k", load)).toBe(1);
    now = 1000;
    expect(await c.getOrLoad("k", load)).toBe(2);
    expect(c.stats()).toEqual({ hits: 1, misses: 2, size: 1 });
  });

  test("errors are not cached; concurrent misses share one load", async () => {
    const c = new TtlCache<string>({ maxTtlMs: 1000 });
    await expect(c.getOrLoad("k", async () => Promise.reject(new Error("down")))).rejects.toThrow("down");
    let loads = 0;
    const slow = async () => {
      loads++;
      await Bun.sleep(10);
      return { value: "v" };
    };
    expect(await Promise.all([c.getOrLoad("k", slow), c.getOrLoad("k", slow)])).toEqual(["v", "v"]);
    expect(loads).toBe(1);
  });

  test("ttlMs ≤ 0 is not cached; maxEntries evicts the oldest", async () => {
    const c = new TtlCache<number>({ maxTtlMs: 1000, maxEntries: 2 });
    await c.getOrLoad("a", async () => ({ value: 1, ttlMs: 0 }));
    expect(c.stats().size).toBe(0);
    for (const k of ["a", "b", "c"]) await c.getOrLoad(k, async () => ({ value: 1 }));
    expect(c.stats().size).toBe(2);
  });
});

describe("service-account classification (issue 4 §4)", () => {
  const rows: { name: string; sa: Parameters<typeof classifyServiceAccount>[0]; expected: unknown }[] = [
    { name: "runner", sa: { namespace: "p", name: "ambient-session-s1", labels: { app: "ambient-runner" } }, expected: { kind: "service", name: "system:serviceaccount:p:ambient-session-s1", project: "p", session: "s1" } },
    { name: "runner name without label", sa: { namespace: "p", name: "ambient-session-s1" }, expected: null },
    { name: "runner with bad session name", sa: { namespace: "p", name: "ambient-session-", labels: { app: "ambient-runner" } }, expected: null },
    { name: "access key", sa: { namespace: "p", name: "k", labels: { app: "ambient-access-key" }, annotations: { "ambient-code.io/created-by-user-id": "a@b" } }, expected: { kind: "user", userId: "a-b", userName: "a-b", source: "kubernetes" } },
    { name: "access key, empty annotation", sa: { namespace: "p", name: "k", labels: { app: "ambient-access-key" }, annotations: { "ambient-code.io/created-by-user-id": "@@" } }, expected: null },
    { name: "annotation without access-key label", sa: { namespace: "p", name: "k", annotations: { "ambient-code.io/created-by-user-id": "a" } }, expected: null },
    { name: "default account", sa: { namespace: "p", name: "default" }, expected: null },
  ];
  for (const r of rows) test(r.name, () => expect(classifyServiceAccount(r.sa)).toEqual(r.expected as never));

  test("parseServiceAccountUsername", () => {
    expect(parseServiceAccountUsername("system:serviceaccount:ns:n")).toEqual({ namespace: "ns", name: "n" });
    expect(parseServiceAccountUsername("system:serviceaccount:ns")).toBeNull();
    expect(parseServiceAccountUsername("alice")).toBeNull();
  });
});

describe("mapping helpers", () => {
  test("toSession: owner sanitised; no owner → null", () => {
    expect(toSession("p", "s", { spec: { userContext: { userId: "Ann Lee" } } })?.ownerId).toBe("Ann-Lee");
    expect(toSession("p", "s", { spec: {} })).toBeNull();
  });
  test("googleSecretKey replaces ':' and '/'", () => expect(googleSecretKey("a:b/c")).toBe("a-b-c"));
});
