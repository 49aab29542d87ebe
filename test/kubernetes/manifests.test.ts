/**
 * deploy/kubernetes manifests (issue 4 §7): they parse, grant exactly the listed permissions, and
 * set NODE_EXTRA_CA_CERTS, tini as PID 1 and the probes. The isolated supervisor's capability list
 * is proven sufficient (as root) by running the runner-uid start-up probe under exactly it.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadAllYaml } from "@kubernetes/client-node";
import { CREDENTIAL_SECRETS } from "../../src/credentials/kubernetes.ts";

const DIR = join(import.meta.dir, "../../deploy/kubernetes");
type Doc = { kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
const load = (f: string) => loadAllYaml(readFileSync(join(DIR, f), "utf8")) as Doc[];
type Rule = { apiGroups?: string[]; resources?: string[]; verbs?: string[]; resourceNames?: string[]; nonResourceURLs?: string[] };

describe("rbac.yaml", () => {
  const docs = load("rbac.yaml");
  const rules = docs.filter((d) => d.kind === "Role" || d.kind === "ClusterRole").flatMap((d) => ((d.rules as Rule[]) ?? []).map((r) => ({ role: d, r })));

  test("grants exactly: get agenticsessions, get serviceaccounts, get named secrets, create token/subject access reviews", () => {
    const flat = rules.flatMap(({ r }) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) => (r.verbs ?? []).map((v) => `${v} ${g}/${res}`)))).sort();
    expect(flat).toEqual(
      [
        "get vteam.ambient-code/agenticsessions",
        "get /serviceaccounts",
        "get /secrets",
        "create authentication.k8s.io/tokenreviews",
        "create authorization.k8s.io/subjectaccessreviews",
      ].sort(),
    );
    for (const { r } of rules) {
      expect(r.nonResourceURLs).toBeUndefined();
      for (const field of [r.apiGroups, r.resources, r.verbs]) expect(field).not.toContain("*");
    }
  });

  test("secrets are restricted to the credential Secrets by resourceNames, in the credentials namespace", () => {
    const secretRules = rules.filter(({ r }) => r.resources?.includes("secrets"));
    expect(secretRules).toHaveLength(1);
    const { role, r } = secretRules[0]!;
    expect(role.kind).toBe("Role");
    expect(role.metadata.namespace).toBe("ambient-code");
    expect([...(r.resourceNames ?? [])].sort()).toEqual(Object.values(CREDENTIAL_SECRETS).sort());
  });

  test("namespaced reads are Roles; only the reviews are cluster-wide", () => {
    for (const { role, r } of rules) {
      if (role.kind === "ClusterRole") expect(r.resources!.every((x) => x === "tokenreviews" || x === "subjectaccessreviews")).toBe(true);
    }
  });
});

for (const file of ["sidecar.yaml", "supervisor.yaml", "supervisor-isolated.yaml"]) {
  describe(file, () => {
    const [pod] = load(file) as (Doc & { spec: { automountServiceAccountToken?: boolean; serviceAccountName?: string; containers: { name: string; command?: string[]; env?: { name: string; value?: string }[]; readinessProbe?: { httpGet?: { path: string } }; livenessProbe?: { httpGet?: { path: string } } }[] } })[];
    const turnkey = pod!.spec.containers.find((c) => c.command?.includes("/usr/local/bin/turnkey"))!;
    const env = Object.fromEntries((turnkey.env ?? []).map((e) => [e.name, e.value]));

    test("sets NODE_EXTRA_CA_CERTS to the service-account CA and the kubernetes backend", () => {
      expect(env.NODE_EXTRA_CA_CERTS).toBe("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
      expect(env.TURNKEY_BACKEND).toBe("kubernetes");
    });
    test("tini is PID 1; probes on /readyz and /healthz", () => {
      expect(turnkey.command![0]).toBe("/usr/bin/tini");
      expect(turnkey.readinessProbe?.httpGet?.path).toBe("/readyz");
      expect(turnkey.livenessProbe?.httpGet?.path).toBe("/healthz");
    });
    test("runs as the turnkey ServiceAccount, without automounting its token into every container", () => {
      expect(pod!.spec.serviceAccountName).toBe("turnkey");
      expect(pod!.spec.automountServiceAccountToken).toBe(false);
    });
  });
}

test("sidecar: TURNKEY_RUNNER_URL points at the runner on loopback; the runner container has no API token", () => {
  const [pod] = load("sidecar.yaml") as Doc[];
  const containers = (pod!.spec as { containers: { name: string; env?: { name: string; value?: string }[]; volumeMounts?: { mountPath: string }[] }[] }).containers;
  const tk = containers.find((c) => c.name === "turnkey")!;
  expect(tk.env!.find((e) => e.name === "TURNKEY_RUNNER_URL")?.value).toBe("http://127.0.0.1:8001/");
  const runner = containers.find((c) => c.name === "runner")!;
  expect((runner.volumeMounts ?? []).some((m) => m.mountPath.startsWith("/var/run/secrets/kubernetes.io"))).toBe(false);
});

describe("supervisor-isolated.yaml", () => {
  type Container = {
    env?: { name: string; value?: string }[];
    securityContext?: { runAsUser?: number; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
    volumeMounts?: { name: string; mountPath: string }[];
  };
  const [pod] = load("supervisor-isolated.yaml") as (Doc & { spec: { containers: Container[]; volumes: { name: string; projected?: { defaultMode?: number } }[] } })[];
  const c = pod!.spec.containers[0]!;
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
  const caps = c.securityContext?.capabilities?.add ?? [];

  test("root in the container with every capability dropped but the five per-turn uids need; no escalation", () => {
    expect(c.securityContext).toMatchObject({ runAsUser: 0, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect([...caps].sort()).toEqual(["CHOWN", "DAC_OVERRIDE", "KILL", "SETGID", "SETUID"]);
  });

  test("runner uids and a turns dir outside the data dir; the API token is root-only", () => {
    expect(env.TURNKEY_RUNNER_UIDS).toMatch(/^\d+-\d+$/);
    const turns = env.TURNKEY_TURNS_DIR!;
    expect(turns.startsWith(env.TURNKEY_DATA_DIR! + "/")).toBe(false);
    expect(c.volumeMounts!.some((m) => m.mountPath === turns)).toBe(true);
    // YAML 1.1 (Kubernetes) reads 0400 as octal; a YAML 1.2 parser reads the same text as decimal.
    expect([0o400, 400]).toContain(pod!.spec.volumes.find((v) => v.name === "kube-api-access")!.projected!.defaultMode!);
  });

  test.skipIf(process.getuid?.() !== 0)("those capabilities suffice: the runner-uid start-up probe passes under exactly them", () => {
    const data = mkdtempSync(join(tmpdir(), "turnkey-manifest-caps-"));
    try {
      const script = `const { openRunnerUidPool } = await import(${JSON.stringify(resolve(import.meta.dir, "../../src/runner/runner-uids.ts"))});
        try { await openRunnerUidPool({ runnerUids: ${JSON.stringify(env.TURNKEY_RUNNER_UIDS)}, turnsDir: ${JSON.stringify(data + "-turns")}, dataDir: ${JSON.stringify(data)}, runnerCommand: ["/bin/true"] }); console.log("started"); }
        catch (err) { console.log(err.name, err.message); }`;
      const bounding = ["-all", ...caps.map((cap) => `+${cap.toLowerCase()}`)].join(",");
      const r = spawnSync("setpriv", ["--bounding-set", bounding, "--inh-caps", "-all", process.execPath, "-e", script], { encoding: "utf8", cwd: "/", env: { PATH: process.env.PATH, HOME: "/tmp" } });
      expect(r.stdout.trim()).toBe("started");
    } finally {
      rmSync(data, { recursive: true, force: true });
      rmSync(data + "-turns", { recursive: true, force: true });
    }
  });
});
