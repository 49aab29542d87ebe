/**
 * Shared setup of the TLS suites (`*.kube.ts`): a fake API server over TLS and the real backend
 * pointed at it through a kubeconfig. These files run in a child `bun test` started by
 * test/kubernetes/kubernetes.test.ts with `NODE_EXTRA_CA_CERTS` = the test CA, because Bun only
 * reads that variable at process start.
 */
import { startFakeKubeApi, type FakeKubeApi } from "../../helpers/fake-kube-api.ts";
import { createKubernetesBackend, type KubernetesBackend } from "../../../src/kubernetes/backend.ts";
import { defaultConfig } from "../../../src/config.ts";

/** Per-call timeout used by the suites, ms: short, so "hang" tests are quick. */
export const TEST_TIMEOUT_MS = 400;

/** Fail fast with a clear message when run without the CA (e.g. `bun test` on this file alone). */
export function requireTestCa(): void {
  if (!process.env.NODE_EXTRA_CA_CERTS || !process.env.TURNKEY_TEST_KUBE_PKI)
    throw new Error("run via `bun test test/kubernetes` (it starts this file with NODE_EXTRA_CA_CERTS set to the test CA)");
}

/** A fake API server plus a backend built from a kubeconfig pointing at it. */
export async function startBackend(over: { tokenAudiences?: string[]; now?: () => number } = {}): Promise<{ api: FakeKubeApi; kube: KubernetesBackend }> {
  requireTestCa();
  const api = startFakeKubeApi();
  const cfg = { ...defaultConfig(), credentialsNamespace: "ambient-code", tokenAudiences: over.tokenAudiences ?? ["turnkey"], kubeTimeoutMs: TEST_TIMEOUT_MS };
  const kube = await createKubernetesBackend(cfg, undefined, { env: { KUBECONFIG: api.kubeconfigPath, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS }, ...(over.now ? { now: over.now } : {}) });
  return { api, kube };
}

/** The session CR the platform writes. */
export function agenticSession(ns: string, name: string, userId: string, displayName?: string) {
  return {
    apiVersion: "vteam.ambient-code/v1alpha1",
    kind: "AgenticSession",
    metadata: { name, namespace: ns, creationTimestamp: "2025-02-03T04:05:06Z" },
    spec: { prompt: "hi", userContext: { userId, ...(displayName ? { displayName } : {}) } },
  };
}
