import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { KUBE_PATHS, type FakeKubeApi } from "../../helpers/fake-kube-api.ts";
import type { KubernetesBackend } from "../../../src/kubernetes/backend.ts";
import { PROVIDERS, type ProviderName } from "../../../src/credentials/providers.ts";
import { TurnkeyError } from "../../../src/errors.ts";
import { startBackend } from "./setup.ts";

let api: FakeKubeApi;
let kube: KubernetesBackend;
const NS = "ambient-code";
const USER = "alice-example.com";
const put = (secret: string, key: string, value: unknown) => {
  const cur = api.secrets.get(`${NS}/${secret}`) ?? {};
  api.secrets.set(`${NS}/${secret}`, { ...cur, [key]: typeof value === "string" ? value : JSON.stringify(value) });
};

beforeAll(async () => {
  ({ api, kube } = await startBackend());
});
afterAll(() => api.stop());
beforeEach(() => {
  api.clearFaults();
  api.resetCounts();
  api.secrets.clear();
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (e) {
    return e instanceof TurnkeyError ? `${e.status} ${e.code}` : String(e);
  }
}

/** Every provider, its Secret/key and expected record. */
const CASES: { provider: ProviderName; secret: string; key: string; value: unknown; expected: unknown }[] = [
  { provider: "github", secret: "github-pat-credentials", key: USER, value: { token: "ghp_A", userName: "alice", email: "a@x" }, expected: { token: "ghp_A", userName: "alice", email: "a@x" } },
  { provider: "gitlab", secret: "gitlab-credentials", key: USER, value: { token: "glpat-A", instanceUrl: "https://gl.example" }, expected: { token: "glpat-A", instanceUrl: "https://gl.example" } },
  { provider: "jira", secret: "jira-credentials", key: USER, value: { url: "https://j.example", email: "a@x", apiToken: "jt-A" }, expected: { url: "https://j.example", email: "a@x", apiToken: "jt-A" } },
  {
    provider: "google",
    secret: "google-oauth-credentials",
    key: "user-1-2", // user ID "user:1/2" with ':' and '/' → '-'
    value: { email: "a@x", accessToken: "ya29.A", refreshToken: "1//r", scopes: ["s1"], expiresAt: "2030-01-01T00:00:00Z" },
    expected: { email: "a@x", accessToken: "ya29.A", refreshToken: "1//r", scopes: ["s1"], expiresAt: "2030-01-01T00:00:00Z" },
  },
  { provider: "coderabbit", secret: "coderabbit-credentials", key: USER, value: { apiKey: "cr-A" }, expected: { apiKey: "cr-A" } },
];

describe("KubernetesCredentialStore", () => {
  for (const c of CASES) {
    test(`${c.provider}: ${c.secret}[${c.key}] → record, 1 Secret GET per call (no cache)`, async () => {
      put(c.secret, c.key, c.value);
      put(c.secret, "bob", { token: "BOB", apiKey: "BOB", url: "u", email: "e", apiToken: "BOB", accessToken: "BOB" });
      const user = c.provider === "google" ? "user:1/2" : USER;
      expect(await kube.credentials.get(user, c.provider)).toEqual(c.expected as never);
      expect(await kube.credentials.get(user, c.provider)).toEqual(c.expected as never);
      expect(api.count(KUBE_PATHS.secret(NS, c.secret))).toBe(2);
    });
  }

  test("gerrit: gerrit-credentials-<user>, one key per instance → {instances}", async () => {
    put(`gerrit-credentials-${USER}`, "review", { url: "https://review.example", username: "alice", httpPassword: "pw1" });
    put(`gerrit-credentials-${USER}`, "android", { url: "https://android.example", username: "al", httpPassword: "pw2" });
    expect(await kube.credentials.get(USER, "gerrit")).toEqual({
      instances: [
        { name: "android", url: "https://android.example", username: "al", httpPassword: "pw2" },
        { name: "review", url: "https://review.example", username: "alice", httpPassword: "pw1" },
      ],
    });
  });

  for (const provider of PROVIDERS) {
    test(`${provider}: missing Secret → null; Secret without the user's key → null`, async () => {
      expect(await kube.credentials.get(USER, provider)).toBeNull();
      for (const c of CASES) put(c.secret, "someone-else", c.value);
      put("gerrit-credentials-someone-else", "review", { url: "u", username: "x", httpPassword: "p" });
      put(`gerrit-credentials-${USER}`, "broken", "not json");
      expect(await kube.credentials.get(USER, provider)).toBeNull();
    });
  }

  test("the project-wide legacy GITHUB_TOKEN is never served in place of the user's token", async () => {
    put("github-pat-credentials", "GITHUB_TOKEN", "ghp_LEGACY");
    put("github-pat-credentials", "GITHUB_TOKEN", { token: "ghp_LEGACY" });
    expect(await kube.credentials.get(USER, "github")).toBeNull();
  });

  test("a value missing its required field is null (not configured)", async () => {
    put("jira-credentials", USER, { url: "https://j", email: "a@x" });
    put("github-pat-credentials", USER, "{not json");
    expect(await kube.credentials.get(USER, "jira")).toBeNull();
    expect(await kube.credentials.get(USER, "github")).toBeNull();
  });

  test.each(["constructor", "__proto__", "toString", "hasOwnProperty"])("user ID %p names no inherited member of the Secret's data → null, not a 500", async (id) => {
    put("github-pat-credentials", USER, { token: "ghp_someone_else" });
    expect(await kube.credentials.get(id, "github")).toBeNull();
  });

  for (const fault of [403, 500, "hang"] as const) {
    test(`Secret read ${fault} → 503 store_unavailable for every provider`, async () => {
      for (const c of CASES) put(c.secret, USER, c.value);
      api.fail(`/api/v1/namespaces/${NS}/secrets`, fault);
      const got: string[] = await Promise.all([...PROVIDERS.map((p) => code(kube.credentials.get(USER, p))), code(kube.credentials.list(USER))]);
      expect(got).toEqual(Array.from({ length: PROVIDERS.length + 1 }, () => "503 store_unavailable"));
    });
  }

  test("list() names the providers present, never values", async () => {
    put("github-pat-credentials", USER, { token: "ghp_A" });
    put("coderabbit-credentials", USER, { apiKey: "cr" });
    const l = await kube.credentials.list(USER);
    expect(l.map((x) => x.provider).sort()).toEqual(["coderabbit", "github"]);
    expect(JSON.stringify(l)).not.toContain("ghp_A");
    expect(l[0]!.updatedAt).toBe("2025-01-01T00:00:00.000Z");
  });

  test("writes answer 405 read_only_backend", async () => {
    expect(kube.credentials.readOnly).toBe(true);
    expect(await code(kube.credentials.put(USER, "github", { token: "x" }))).toBe("405 read_only_backend");
    expect(await code(kube.credentials.delete(USER, "github"))).toBe("405 read_only_backend");
  });

  test("a user ID that cannot name a Secret (gerrit) → null without an API call", async () => {
    expect(await kube.credentials.get("Alice_Upper", "gerrit")).toBeNull();
    expect(api.countPrefix("/api/v1/")).toBe(0);
  });
});
