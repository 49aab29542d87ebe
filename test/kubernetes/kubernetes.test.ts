/**
 * Entry point of the Kubernetes backend tests that need TLS.
 *
 * Under Bun, @kubernetes/client-node ignores the CA in its own config (it hands it to an undici
 * dispatcher that Bun's fetch does not use), and Bun reads NODE_EXTRA_CA_CERTS only at process
 * start. So this file (a) proves that behaviour in-process, and (b) makes a throwaway CA with
 * openssl and runs each suite in test/kubernetes/tls/*.kube.ts in a child `bun test` started with
 * NODE_EXTRA_CA_CERTS = that CA. `npm test` / `bun test` from a clean clone needs nothing else.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTestPki, startFakeKubeApi, type FakeKubeApi, type TestPki } from "../helpers/fake-kube-api.ts";
import { createKubernetesBackend } from "../../src/kubernetes/backend.ts";
import { defaultConfig } from "../../src/config.ts";
import { TurnkeyError } from "../../src/errors.ts";

const ROOT = resolve(import.meta.dir, "../..");
const SUITES = readdirSync(join(import.meta.dir, "tls")).filter((f) => f.endsWith(".kube.ts")).sort();

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

describe("TLS to the API server under Bun", () => {
  let api: FakeKubeApi;
  beforeAll(() => {
    api = startFakeKubeApi({ pki });
  });
  afterAll(() => api.stop());

  test("without NODE_EXTRA_CA_CERTS at start, the kubeconfig CA is ignored: TLS fails and the store answers 503", async () => {
    // This process was not started with our fresh CA, whatever the caller's environment holds.
    api.secrets.set("ambient-code/github-pat-credentials", { alice: JSON.stringify({ token: "t" }) });
    const kube = await createKubernetesBackend({ ...defaultConfig(), kubeTimeoutMs: 2000 }, undefined, { env: { KUBECONFIG: api.kubeconfigPath } });
    const err = await kube.credentials.get("alice", "github").catch((e) => e);
    expect(err).toBeInstanceOf(TurnkeyError);
    expect((err as TurnkeyError).code).toBe("store_unavailable");
    expect((err as Error).message).toMatch(/UNABLE_TO_VERIFY|SELF_SIGNED|CERT/i);
    // The request never completed a TLS handshake, so the server saw nothing.
    expect(api.countPrefix("/api/")).toBe(0);
  });
});

describe("suites run with NODE_EXTRA_CA_CERTS = test CA", () => {
  test("there are suites to run", () => expect(SUITES.length).toBeGreaterThan(0));
  for (const suite of SUITES) {
    test(suite, async () => {
      const proc = Bun.spawn([process.execPath, "test", `./test/kubernetes/tls/${suite}`], {
        cwd: ROOT,
        env: { ...process.env, NODE_EXTRA_CA_CERTS: pki.caFile, TURNKEY_TEST_KUBE_PKI: pki.dir },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      if (code !== 0) console.error(`--- ${suite} (exit ${code}) ---\n${out}\n${err}`);
      expect(code).toBe(0);
      // bun test prints its summary on stderr; make sure the suite really ran tests.
      expect(`${out}\n${err}`).toMatch(/\b[1-9]\d* pass\b/);
      expect(`${out}\n${err}`).toMatch(/\b0 fail\b/);
    });
  }
});
