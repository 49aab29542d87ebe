import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, exportJWK, generateKeyPair, jwtVerify } from "jose";
import { startFakeKubeApi, makeTestPki, type FakeKubeApi } from "../../helpers/fake-kube-api.ts";
import { SERVICE_ACCOUNT_DIR, checkCaSetup, loadKubeConfig, makeKubeClients } from "../../../src/kubernetes/client.ts";
import { discoverServiceAccountIssuer } from "../../../src/kubernetes/oidc-discovery.ts";
import { createKubernetesBackend } from "../../../src/kubernetes/backend.ts";
import { defaultConfig } from "../../../src/config.ts";
import { TurnkeyError } from "../../../src/errors.ts";
import { requireTestCa } from "./setup.ts";

let api: FakeKubeApi;
beforeAll(() => {
  requireTestCa();
  api = startFakeKubeApi();
});
/** Temp dirs made by this file, removed after it (they hold tokens and keys). */
const made: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
};
afterAll(async () => {
  await api.stop();
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fake pod filesystem: `<prefix>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`. */
function podFiles(token: string): string {
  const prefix = tempDir("turnkey-pod-");
  const dir = prefix + SERVICE_ACCOUNT_DIR;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/token`, token);
  writeFileSync(`${dir}/ca.crt`, api.pki.caPem);
  writeFileSync(`${dir}/namespace`, "proj");
  return prefix;
}

describe("loadKubeConfig", () => {
  test("in-cluster: KUBERNETES_SERVICE_HOST + token file → in-cluster config, token read from the file", async () => {
    const prefix = podFiles(api.token);
    const port = new URL(api.url).port;
    // client-node reads these from process.env itself (this file runs in its own process).
    process.env.KUBERNETES_SERVICE_HOST = "127.0.0.1";
    process.env.KUBERNETES_SERVICE_PORT = port;
    try {
      const loaded = loadKubeConfig({ env: process.env, pathPrefix: prefix });
      expect(loaded.mode).toBe("in-cluster");
      expect(loaded.server).toBe(`https://127.0.0.1:${port}`);
      expect(loaded.caPem).toBe(api.pki.caPem);
      expect(loaded.token()).toBe(api.token);
      api.secrets.set("ambient-code/s", { k: "v" });
      const secret = await makeKubeClients(loaded.kc).core.readNamespacedSecret({ name: "s", namespace: "ambient-code" });
      expect(Buffer.from(secret.data!.k!, "base64").toString()).toBe("v");
    } finally {
      delete process.env.KUBERNETES_SERVICE_HOST;
      delete process.env.KUBERNETES_SERVICE_PORT;
    }
  });

  test("KUBECONFIG: certificate-authority-data and token from the file", () => {
    const loaded = loadKubeConfig({ env: { KUBECONFIG: api.kubeconfigPath } });
    expect(loaded.mode).toBe("kubeconfig");
    expect(loaded.server).toBe(api.url);
    expect(loaded.caPem).toBe(api.pki.caPem);
    expect(loaded.token()).toBe(api.token);
  });
});

describe("checkCaSetup (NODE_EXTRA_CA_CERTS under Bun)", () => {
  const loaded = () => loadKubeConfig({ env: { KUBECONFIG: api.kubeconfigPath } });
  test("ok when the variable names a file holding the cluster CA", () => {
    expect(checkCaSetup(loaded(), { NODE_EXTRA_CA_CERTS: api.pki.caFile }).status).toBe("ok");
  });
  test("missing → a message naming the variable and the in-cluster CA path", () => {
    const r = checkCaSetup(loaded(), {});
    expect(r.status).toBe("missing");
    expect("message" in r && r.message).toContain("NODE_EXTRA_CA_CERTS=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
  });
  test("mismatch when the file holds another CA; unreadable when it does not exist", () => {
    const other = makeTestPki(tempDir("turnkey-other-ca-"));
    expect(checkCaSetup(loaded(), { NODE_EXTRA_CA_CERTS: other.caFile }).status).toBe("mismatch");
    expect(checkCaSetup(loaded(), { NODE_EXTRA_CA_CERTS: "/nonexistent/ca.crt" }).status).toBe("unreadable");
  });
  test("createKubernetesBackend logs a warning when the CA is not covered", async () => {
    const warnings: string[] = [];
    const logger = { warn: (_o: object, msg?: string) => void warnings.push(msg ?? ""), info: () => {} };
    await createKubernetesBackend({ ...defaultConfig() }, logger as never, { env: { KUBECONFIG: api.kubeconfigPath } });
    expect(warnings.join("\n")).toContain("NODE_EXTRA_CA_CERTS is unset");
  });
});

describe("readiness", () => {
  test("ready() is true while GET /version answers, false when the API fails or hangs", async () => {
    const kube = await createKubernetesBackend({ ...defaultConfig(), kubeTimeoutMs: 400 }, undefined, { env: { KUBECONFIG: api.kubeconfigPath, NODE_EXTRA_CA_CERTS: api.pki.caFile } });
    expect(await kube.ready()).toBe(true);
    api.fail("/version", 500);
    expect(await kube.ready()).toBe(false);
    api.fail("/version", "hang");
    expect(await kube.ready()).toBe(false);
    api.clearFaults();
    expect(await kube.ready()).toBe(true);
  });
});

describe("service-account issuer discovery", () => {
  test("discovers the issuer, fetches the JWKS with the pod's token over the cluster CA, verifies a token", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    api.oidc.jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256", use: "sig" }] };
    api.log.jwksAuth.length = 0;
    const sa = await discoverServiceAccountIssuer({ apiServer: api.url, token: () => api.token, caPem: api.pki.caPem });
    expect(sa.issuer).toBe("https://kubernetes.default.svc.cluster.local");
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k1" }).setIssuer(sa.issuer).setSubject("system:serviceaccount:proj:x").setAudience("turnkey").setExpirationTime("5m").sign(privateKey);
    const { payload } = await jwtVerify(jwt, sa.keys, { issuer: sa.issuer, audience: "turnkey" });
    expect(payload.sub).toBe("system:serviceaccount:proj:x");
    expect(api.log.jwksAuth).toEqual([`Bearer ${api.token}`]);
  });

  test("a jwks_uri on another origin is fetched from the configured API server (the token never leaves it)", async () => {
    api.oidc.jwksUri = "https://203.0.113.9:6443/openid/v1/jwks";
    try {
      const sa = await discoverServiceAccountIssuer({ apiServer: api.url, token: () => api.token, caPem: api.pki.caPem });
      expect(sa.jwksUrl).toBe(`${api.url}/openid/v1/jwks`);
    } finally {
      delete api.oidc.jwksUri;
    }
  });

  test("discovery failing → 503 identity_unavailable; the backend retries on the next call", async () => {
    const kube = await createKubernetesBackend({ ...defaultConfig(), kubeTimeoutMs: 400 }, undefined, { env: { KUBECONFIG: api.kubeconfigPath, NODE_EXTRA_CA_CERTS: api.pki.caFile } });
    api.fail("/.well-known/openid-configuration", 500);
    const err = await kube.serviceAccountIssuer().catch((e) => e);
    expect(err).toBeInstanceOf(TurnkeyError);
    expect((err as TurnkeyError).code).toBe("identity_unavailable");
    api.clearFaults();
    expect((await kube.serviceAccountIssuer()).issuer).toBe("https://kubernetes.default.svc.cluster.local");
  });
});
