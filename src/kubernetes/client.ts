/**
 * Kubernetes client setup for the Kubernetes backend (issue 4 §1, §6).
 *
 * - Config: in-cluster (`KUBERNETES_SERVICE_HOST` set and the pod's service-account token file
 *   present) → `KubeConfig.loadFromCluster()`; otherwise `loadFromDefault()` (`KUBECONFIG`, then
 *   `~/.kube/config`).
 * - TLS under Bun: client-node 2.x passes the cluster CA to an undici `dispatcher`, which Bun's
 *   `fetch` ignores, so `certificate-authority(-data)` / the in-cluster `ca.crt` has no effect.
 *   The CA must be in `NODE_EXTRA_CA_CERTS` when the process starts (setting it later, or calling
 *   `tls.setDefaultCACertificates`, does not reach Bun's fetch — verified against the fake API
 *   server, see test/kubernetes). `checkCaSetup` detects a missing/mismatched variable and the
 *   caller logs it.
 * - Every API call carries a timeout (`AbortSignal.timeout`) via a client-node middleware, so a
 *   hanging API server becomes a 503 instead of a hung request.
 */
import { existsSync, readFileSync } from "node:fs";
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  ServerConfiguration,
  VersionApi,
  createConfiguration,
  type Middleware,
} from "@kubernetes/client-node";

/** Where the kubelet mounts the pod's service-account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Default timeout of one API call, in milliseconds. */
export const DEFAULT_KUBE_TIMEOUT_MS = 5000;

/** Options of `loadKubeConfig`. */
export interface LoadKubeConfigOptions {
  /** Usually `process.env`. Reads `KUBERNETES_SERVICE_HOST`, `KUBECONFIG`. */
  env?: Record<string, string | undefined>;
  /** Prefix for the service-account mount (tests: a temp dir); default "" (the real path). */
  pathPrefix?: string;
}

/** A loaded config plus how it was found. */
export interface LoadedKubeConfig {
  kc: KubeConfig;
  /** `in-cluster` or `kubeconfig`. */
  mode: "in-cluster" | "kubeconfig";
  /** API server base URL, e.g. `https://10.96.0.1:443`. */
  server: string;
  /** PEM of the cluster CA when the config names one (file or inline data). */
  caPem?: string;
  /** Reads the bearer token used for our own calls fresh each time (projected tokens rotate). */
  token(): string | undefined;
}

/**
 * Load the Kubernetes client configuration.
 * @throws Error when no cluster is configured (no in-cluster env and no usable kubeconfig).
 */
export function loadKubeConfig(opts: LoadKubeConfigOptions = {}): LoadedKubeConfig {
  const env = opts.env ?? process.env;
  const prefix = opts.pathPrefix ?? "";
  const kc = new KubeConfig();
  let mode: LoadedKubeConfig["mode"];
  if (env.KUBERNETES_SERVICE_HOST && existsSync(`${prefix}${SERVICE_ACCOUNT_DIR}/token`)) {
    // client-node reads KUBERNETES_SERVICE_HOST/PORT from process.env itself.
    kc.loadFromCluster(prefix);
    mode = "in-cluster";
  } else if (env.KUBECONFIG) {
    // loadFromDefault reads process.env; honour an injected env by loading the first path ourselves.
    const first = env.KUBECONFIG.split(process.platform === "win32" ? ";" : ":").find(Boolean);
    if (!first) throw new Error("KUBECONFIG is empty");
    kc.loadFromFile(first);
    mode = "kubeconfig";
  } else {
    kc.loadFromDefault();
    mode = "kubeconfig";
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("no current cluster in the Kubernetes configuration");
  let caPem: string | undefined;
  if (cluster.caData) caPem = Buffer.from(cluster.caData, "base64").toString("utf8");
  else if (cluster.caFile && existsSync(cluster.caFile)) caPem = readFileSync(cluster.caFile, "utf8");
  const user = kc.getCurrentUser();
  const token = () => {
    const cfg = user?.authProvider?.config as { tokenFile?: string } | undefined;
    if (cfg?.tokenFile && existsSync(cfg.tokenFile)) return readFileSync(cfg.tokenFile, "utf8").trim();
    return user?.token;
  };
  return { kc, mode, server: cluster.server.replace(/\/+$/, ""), ...(caPem !== undefined ? { caPem } : {}), token };
}

/** Result of `checkCaSetup`: `ok`, or why Bun will not trust the cluster's certificate. */
export type CaSetup =
  | { status: "ok" | "not-needed" }
  | { status: "missing" | "mismatch" | "unreadable"; message: string };

const normalizePem = (pem: string) => pem.replace(/\s+/g, "");

/**
 * Whether `NODE_EXTRA_CA_CERTS` (as the process was started) covers the cluster CA.
 * `not-needed` for plain-HTTP servers or configs without a CA (publicly trusted certificates).
 * @param env the environment the process was started with (usually `process.env`).
 */
export function checkCaSetup(loaded: Pick<LoadedKubeConfig, "server" | "caPem">, env: Record<string, string | undefined> = process.env): CaSetup {
  if (!loaded.server.startsWith("https:") || loaded.caPem === undefined) return { status: "not-needed" };
  const extra = env.NODE_EXTRA_CA_CERTS;
  if (!extra)
    return {
      status: "missing",
      message: `NODE_EXTRA_CA_CERTS is unset: under Bun the Kubernetes client ignores the cluster CA from its config, so TLS to ${loaded.server} will fail. Start the process with NODE_EXTRA_CA_CERTS=${SERVICE_ACCOUNT_DIR}/ca.crt (in a pod) or the kubeconfig's CA file.`,
    };
  let content: string;
  try {
    content = readFileSync(extra, "utf8");
  } catch {
    return { status: "unreadable", message: `NODE_EXTRA_CA_CERTS=${extra} cannot be read; TLS to ${loaded.server} will fail` };
  }
  const blocks = loaded.caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const have = normalizePem(content);
  if (blocks.length > 0 && !blocks.every((b) => have.includes(normalizePem(b))))
    return { status: "mismatch", message: `NODE_EXTRA_CA_CERTS=${extra} does not contain the cluster CA of ${loaded.server}; TLS will fail` };
  return { status: "ok" };
}

/** A client-node middleware that aborts each request after `timeoutMs` milliseconds. */
export function timeoutMiddleware(timeoutMs: number): Middleware {
  return {
    pre: async (ctx) => {
      ctx.setSignal(AbortSignal.timeout(timeoutMs));
      return ctx;
    },
    post: async (ctx) => ctx,
  };
}

/** The typed API clients the backend uses, all sharing one config and timeout. */
export interface KubeClients {
  core: CoreV1Api;
  customObjects: CustomObjectsApi;
  authentication: AuthenticationV1Api;
  authorization: AuthorizationV1Api;
  /** `GET /version`: readable by every authenticated identity (system:public-info-viewer). */
  version: VersionApi;
}

/**
 * Build the API clients (object-parameter API) with a per-request timeout.
 * @param timeoutMs per-call timeout in milliseconds; default `DEFAULT_KUBE_TIMEOUT_MS`.
 */
export function makeKubeClients(kc: KubeConfig, timeoutMs = DEFAULT_KUBE_TIMEOUT_MS): KubeClients {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("no current cluster in the Kubernetes configuration");
  const config = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [timeoutMiddleware(timeoutMs)],
  });
  return {
    core: new CoreV1Api(config),
    customObjects: new CustomObjectsApi(config),
    authentication: new AuthenticationV1Api(config),
    authorization: new AuthorizationV1Api(config),
    version: new VersionApi(config),
  };
}
