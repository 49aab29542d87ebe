/**
 * A loopback fake Kubernetes API server for tests (issue 4 "Tests that must exist"): Bun.serve
 * over TLS with a throwaway CA made by openssl, answering the real REST paths with real-shaped
 * objects and `Status` errors, so the real `@kubernetes/client-node` can talk to it.
 *
 * Paths: AgenticSession CR, Secrets, ServiceAccounts (GET), TokenReview and SubjectAccessReview
 * (POST), service-account issuer discovery and JWKS, `/version` (readiness). Faults (404/403/500/hang) are injectable per
 * path prefix; requests are counted per path.
 *
 * TLS under Bun: the client only trusts this server when the process was started with
 * `NODE_EXTRA_CA_CERTS` naming `pki.caFile` (see test/kubernetes/kubernetes.test.ts).
 */
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Files of a throwaway PKI: CA and a server cert for 127.0.0.1/localhost. */
export interface TestPki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  caPem: string;
}

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.toString()}`);
}

/**
 * Create (or reuse, when `dir` already holds one) a CA and a server certificate with SANs
 * `IP:127.0.0.1, DNS:localhost`, valid one day. Default dir: `$TURNKEY_TEST_KUBE_PKI`, else a new
 * temp dir.
 */
export function makeTestPki(dir = process.env.TURNKEY_TEST_KUBE_PKI ?? mkdtempSync(join(tmpdir(), "turnkey-kube-pki-"))): TestPki {
  mkdirSync(dir, { recursive: true });
  const f = (n: string) => join(dir, n);
  if (!existsSync(f("server.crt"))) {
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=turnkey-test-ca"], dir);
    openssl(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"], dir);
    writeFileSync(f("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
    openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext.cnf"], dir);
  }
  return { dir, caFile: f("ca.crt"), certFile: f("server.crt"), keyFile: f("server.key"), caPem: readFileSync(f("ca.crt"), "utf8") };
}

/** What the fake TokenReview answers for a token. */
export interface FakeTokenUser {
  username: string;
  uid?: string;
  groups?: string[];
  /** `user.extra` of the review (e.g. OpenShift scopes); absent by default. */
  extra?: Record<string, string[]>;
  /** Audiences the token is valid for; default: whatever was asked. */
  audiences?: string[];
}

/** A fault answered for every request whose path starts with the prefix. */
export type Fault = 403 | 404 | 500 | "hang";

/** The running fake server and its state; mutate the maps between calls. */
export interface FakeKubeApi {
  url: string;
  /** Bearer token the server requires (401 otherwise). */
  token: string;
  pki: TestPki;
  /** Kubeconfig (certificate-authority-data + token) pointing at this server. */
  kubeconfigPath: string;
  /** `ns/name` → AgenticSession object. */
  sessions: Map<string, Record<string, unknown>>;
  /** `ns/name` → Secret string data (the server base64-encodes it, as a real one does). */
  secrets: Map<string, Record<string, string>>;
  /** `ns/name` → labels/annotations of a ServiceAccount. */
  serviceAccounts: Map<string, { labels?: Record<string, string>; annotations?: Record<string, string> }>;
  /** raw token → authenticated user (absent = `authenticated: false`). */
  tokens: Map<string, FakeTokenUser>;
  /** Allowed SARs, as `user|namespace|resource|name|verb`. */
  allowed: Set<string>;
  /** Body of the OpenID configuration and the JWKS. */
  oidc: { issuer: string; jwksUri?: string; jwks: { keys: unknown[] } };
  /** Request bodies of TokenReviews / SARs / headers of JWKS calls, for assertions. */
  log: { tokenReviews: unknown[]; sars: unknown[]; jwksAuth: (string | null)[] };
  /** Answer `fault` for paths starting with `prefix` until `clearFaults()`. */
  fail(prefix: string, fault: Fault): void;
  clearFaults(): void;
  /** Requests seen for an exact path (any method). */
  count(path: string): number;
  /** Sum of requests whose path starts with `prefix`. */
  countPrefix(prefix: string): number;
  resetCounts(): void;
  stop(): Promise<void>;
}

const status = (code: number, reason: string, message: string, details?: Record<string, string>) =>
  Response.json({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code }, { status: code });

const FAULT_REASON: Record<number, string> = { 403: "Forbidden", 404: "NotFound", 500: "InternalError" };

/**
 * Start the fake API server on 127.0.0.1 (random port) and write a kubeconfig for it.
 * @param opts.pki default `makeTestPki()`; opts.token default a random string.
 */
export function startFakeKubeApi(opts: { pki?: TestPki; token?: string } = {}): FakeKubeApi {
  const pki = opts.pki ?? makeTestPki();
  const token = opts.token ?? `fake-kube-${crypto.randomUUID()}`;
  const counts = new Map<string, number>();
  const faults = new Map<string, Fault>();
  const hangs: (() => void)[] = [];
  const api = {
    token,
    pki,
    sessions: new Map(),
    secrets: new Map(),
    serviceAccounts: new Map(),
    tokens: new Map(),
    allowed: new Set<string>(),
    oidc: { issuer: "https://kubernetes.default.svc.cluster.local", jwks: { keys: [] as unknown[] } },
    log: { tokenReviews: [] as unknown[], sars: [] as unknown[], jwksAuth: [] as (string | null)[] },
  } as unknown as FakeKubeApi;

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: readFileSync(pki.certFile, "utf8"), key: readFileSync(pki.keyFile, "utf8") },
    async fetch(req) {
      const url = new URL(req.url);
      const path = url.pathname;
      counts.set(path, (counts.get(path) ?? 0) + 1);
      for (const [prefix, fault] of faults) {
        if (!path.startsWith(prefix)) continue;
        if (fault === "hang") return new Promise<Response>((resolve) => hangs.push(() => resolve(status(500, "InternalError", "stopped"))));
        return status(fault, FAULT_REASON[fault] ?? "InternalError", `injected ${fault}`);
      }
      if (path === "/openid/v1/jwks") api.log.jwksAuth.push(req.headers.get("authorization"));
      if (req.headers.get("authorization") !== `Bearer ${token}`) return status(401, "Unauthorized", "Unauthorized");
      return route(req, path);
    },
  });
  const url = `https://127.0.0.1:${server.port}`;
  api.url = url;

  async function route(req: Request, path: string): Promise<Response> {
    let m: RegExpMatchArray | null;
    if (req.method === "GET" && (m = path.match(/^\/apis\/vteam\.ambient-code\/v1alpha1\/namespaces\/([^/]+)\/agenticsessions\/([^/]+)$/))) {
      const obj = api.sessions.get(`${m[1]}/${m[2]}`);
      return obj ? Response.json(obj) : status(404, "NotFound", `agenticsessions.vteam.ambient-code "${m[2]}" not found`, { name: m[2]!, group: "vteam.ambient-code", kind: "agenticsessions" });
    }
    if (req.method === "GET" && (m = path.match(/^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/))) {
      const data = api.secrets.get(`${m[1]}/${m[2]}`);
      if (!data) return status(404, "NotFound", `secrets "${m[2]}" not found`, { name: m[2]!, kind: "secrets" });
      const enc = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
      return Response.json({ apiVersion: "v1", kind: "Secret", type: "Opaque", metadata: { name: m[2], namespace: m[1], creationTimestamp: "2025-01-01T00:00:00Z" }, data: enc });
    }
    if (req.method === "GET" && (m = path.match(/^\/api\/v1\/namespaces\/([^/]+)\/serviceaccounts\/([^/]+)$/))) {
      const sa = api.serviceAccounts.get(`${m[1]}/${m[2]}`);
      if (!sa) return status(404, "NotFound", `serviceaccounts "${m[2]}" not found`, { name: m[2]!, kind: "serviceaccounts" });
      return Response.json({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: m[2], namespace: m[1], labels: sa.labels ?? {}, annotations: sa.annotations ?? {} } });
    }
    if (req.method === "POST" && path === "/apis/authentication.k8s.io/v1/tokenreviews") {
      const body = (await req.json()) as { spec?: { token?: string; audiences?: string[] } };
      api.log.tokenReviews.push({ audiences: body.spec?.audiences });
      const user = api.tokens.get(body.spec?.token ?? "");
      const asked = body.spec?.audiences ?? [];
      const aud = user?.audiences ?? asked;
      const ok = user !== undefined && (asked.length === 0 || asked.some((a) => aud.includes(a)));
      const st = ok
        ? { authenticated: true, user: { username: user.username, uid: user.uid ?? "uid-1", groups: user.groups ?? [], ...(user.extra ? { extra: user.extra } : {}) }, audiences: asked.length ? asked.filter((a) => aud.includes(a)) : aud }
        : { authenticated: false, error: "token not valid", user: {} };
      return Response.json({ apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", metadata: { creationTimestamp: null }, spec: { audiences: asked }, status: st }, { status: 201 });
    }
    if (req.method === "POST" && path === "/apis/authorization.k8s.io/v1/subjectaccessreviews") {
      const body = (await req.json()) as { spec: { user?: string; groups?: string[]; resourceAttributes?: Record<string, string> } };
      api.log.sars.push(body.spec);
      const ra = body.spec.resourceAttributes ?? {};
      const allowed = api.allowed.has(`${body.spec.user}|${ra.namespace}|${ra.resource}|${ra.name}|${ra.verb}`);
      return Response.json({ apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", metadata: {}, spec: body.spec, status: { allowed, ...(allowed ? { reason: "RBAC: allowed" } : {}) } }, { status: 201 });
    }
    if (req.method === "GET" && path === "/.well-known/openid-configuration") {
      return Response.json({
        issuer: api.oidc.issuer,
        jwks_uri: api.oidc.jwksUri ?? `${url}/openid/v1/jwks`,
        response_types_supported: ["id_token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256", "ES256"],
      });
    }
    if (req.method === "GET" && path === "/openid/v1/jwks") return Response.json(api.oidc.jwks);
    if (req.method === "GET" && path === "/version")
      return Response.json({ major: "1", minor: "33", gitVersion: "v1.33.0-fake", gitCommit: "0", gitTreeState: "clean", buildDate: "2025-01-01T00:00:00Z", goVersion: "go1.24", compiler: "gc", platform: "linux/amd64" });
    return status(404, "NotFound", "the server could not find the requested resource");
  }

  const kcDir = mkdtempSync(join(tmpdir(), "turnkey-kubeconfig-"));
  api.kubeconfigPath = join(kcDir, "config");
  writeFileSync(
    api.kubeconfigPath,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: fake",
      "  cluster:",
      `    server: ${url}`,
      `    certificate-authority-data: ${Buffer.from(pki.caPem).toString("base64")}`,
      "users:",
      "- name: turnkey",
      "  user:",
      `    token: ${token}`,
      "contexts:",
      "- name: fake",
      "  context: {cluster: fake, user: turnkey}",
      "current-context: fake",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );

  api.fail = (prefix, fault) => void faults.set(prefix, fault);
  api.clearFaults = () => {
    faults.clear();
    for (const h of hangs.splice(0)) h();
  };
  api.count = (p) => counts.get(p) ?? 0;
  api.countPrefix = (prefix) => [...counts].filter(([p]) => p.startsWith(prefix)).reduce((n, [, c]) => n + c, 0);
  api.resetCounts = () => counts.clear();
  api.stop = async () => {
    for (const h of hangs.splice(0)) h();
    await server.stop(true);
    rmSync(kcDir, { recursive: true, force: true });
  };
  return api;
}

/** Paths of the real API, for `count()` assertions. */
export const KUBE_PATHS = {
  session: (ns: string, name: string) => `/apis/vteam.ambient-code/v1alpha1/namespaces/${ns}/agenticsessions/${name}`,
  secret: (ns: string, name: string) => `/api/v1/namespaces/${ns}/secrets/${name}`,
  serviceAccount: (ns: string, name: string) => `/api/v1/namespaces/${ns}/serviceaccounts/${name}`,
  tokenReviews: "/apis/authentication.k8s.io/v1/tokenreviews",
  sars: "/apis/authorization.k8s.io/v1/subjectaccessreviews",
} as const;
