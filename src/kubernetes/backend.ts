/**
 * The Kubernetes backend factory (issue 4): one Kubernetes client shared by the session store,
 * the credential store and the TokenReview authenticator, plus cache/call counters for metrics.
 *
 * @example
 * const kube = await createKubernetesBackend(cfg, logger);
 * const auth = createAuthenticator({ turnTokens, botTokens, jwt, members: kube.authenticators });
 * // ... serve with kube.sessions / kube.credentials ...
 * await kube.close();
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { SessionStore } from "../sessions/types.ts";
import type { CredentialStore } from "../credentials/types.ts";
import type { Authenticator } from "../identity/principal.ts";
import type { BearerAuthenticator } from "../identity/authenticate.ts";
import { TURN_TOKEN_ISSUER } from "../identity/turn-token.ts";
import { KubernetesSessionStore } from "../sessions/kubernetes.ts";
import { KubernetesCredentialStore } from "../credentials/kubernetes.ts";
import { TokenReviewAuthenticator } from "../identity/token-review.ts";
import { checkCaSetup, loadKubeConfig, makeKubeClients, type LoadKubeConfigOptions, type LoadedKubeConfig } from "./client.ts";
import { describeApiError } from "./errors.ts";
import { discoverServiceAccountIssuer, type ServiceAccountIssuer } from "./oidc-discovery.ts";
import { memoiseDiscovery } from "../identity/oidc-discovery.ts";

/** What `createKubernetesBackend` returns. */
export interface KubernetesBackend {
  /** Read-only `KubernetesSessionStore` (AgenticSessions + SubjectAccessReviews). */
  sessions: KubernetesSessionStore & SessionStore;
  /** Read-only `KubernetesCredentialStore` (the platform's Secrets). */
  credentials: CredentialStore;
  /** `[TokenReviewAuthenticator]`: also a `BearerAuthenticator`, for `createAuthenticator({ members })`. */
  authenticators: (Authenticator & BearerAuthenticator)[];
  /**
   * Discover the cluster's service-account OIDC issuer (memoised after the first success) and
   * return a jose key set for the JWT authenticator. @throws 503 `identity_unavailable`.
   */
  serviceAccountIssuer(): Promise<ServiceAccountIssuer>;
  /**
   * Counters, flat: `kube.sessions.cache_hits|cache_misses|cache_size`,
   * `kube.sars.cache_*`, `kube.token_reviews.cache_*`. Monotonic except `*_size`. No secrets.
   */
  metrics(): Record<string, number>;
  /**
   * Readiness for `/readyz`: true iff the API server answers `GET /version` over TLS with our
   * token. Use this rather than a probe read of a session: under the least-privilege Role a read
   * in any other namespace is 403, which would keep the pod unready forever.
   */
  ready(): Promise<boolean>;
  /** Drop caches. The client holds no long-lived connections that need closing. */
  close(): Promise<void>;
  /** How the cluster was found (`in-cluster` / `kubeconfig`) and its API server URL. */
  info: { mode: LoadedKubeConfig["mode"]; server: string };
}

/** Extra options, mostly for tests. */
export interface KubernetesBackendOptions extends LoadKubeConfigOptions {
  /** JWT issuers other members handle (never sent to TokenReview); default `[cfg.jwtIssuer, "turnkey"]`. */
  skipIssuers?: readonly string[];
  now?: () => number;
}

/**
 * Build the Kubernetes backend from the validated configuration.
 * Reads: `credentialsNamespace`, `tokenAudiences`, `jwtIssuer`, `kubeTimeoutMs`, `kubeCacheTtlMs`;
 * the cluster from in-cluster files or `KUBECONFIG`. Logs a warning when `NODE_EXTRA_CA_CERTS`
 * does not cover the cluster CA (under Bun the client ignores the CA in its own config).
 * @throws Error when no cluster configuration can be loaded.
 */
export async function createKubernetesBackend(
  cfg: Pick<Config, "credentialsNamespace" | "tokenAudiences" | "jwtIssuer"> & Partial<Pick<Config, "kubeTimeoutMs" | "kubeCacheTtlMs">>,
  logger?: Pick<Logger, "warn" | "info">,
  opts: KubernetesBackendOptions = {},
): Promise<KubernetesBackend> {
  const loaded = loadKubeConfig(opts);
  const ca = checkCaSetup(loaded, opts.env ?? process.env);
  if ("message" in ca) logger?.warn({ kubeCa: ca.status, server: loaded.server }, ca.message);
  logger?.info({ kubeMode: loaded.mode, server: loaded.server, credentialsNamespace: cfg.credentialsNamespace }, "kubernetes backend");

  const clients = makeKubeClients(loaded.kc, cfg.kubeTimeoutMs);
  const now = opts.now ? { now: opts.now } : {};
  const sessions = new KubernetesSessionStore({
    customObjects: clients.customObjects,
    authorization: clients.authorization,
    ...(cfg.kubeCacheTtlMs !== undefined ? { cacheTtlMs: cfg.kubeCacheTtlMs } : {}),
    ...now,
  });
  const credentials = new KubernetesCredentialStore({ core: clients.core, namespace: cfg.credentialsNamespace });
  const tokenReview = new TokenReviewAuthenticator({
    authentication: clients.authentication,
    core: clients.core,
    audiences: cfg.tokenAudiences,
    skipIssuers: opts.skipIssuers ?? [cfg.jwtIssuer, TURN_TOKEN_ISSUER],
    ...now,
  });

  const serviceAccountIssuer = memoiseDiscovery(() =>
    discoverServiceAccountIssuer({
      apiServer: loaded.server,
      token: loaded.token,
      ...(loaded.caPem !== undefined ? { caPem: loaded.caPem } : {}),
      ...(cfg.kubeTimeoutMs !== undefined ? { timeoutMs: cfg.kubeTimeoutMs } : {}),
    }),
  );

  const flat = (prefix: string, s: { hits: number; misses: number; size: number }) => ({
    [`${prefix}.cache_hits`]: s.hits,
    [`${prefix}.cache_misses`]: s.misses,
    [`${prefix}.cache_size`]: s.size,
  });
  return {
    sessions,
    credentials,
    authenticators: [tokenReview],
    serviceAccountIssuer,
    metrics: () => {
      const st = sessions.stats();
      return { ...flat("kube.sessions", st.sessions), ...flat("kube.sars", st.sars), ...flat("kube.token_reviews", tokenReview.stats()) };
    },
    ready: async () => {
      try {
        await clients.version.getCode();
        return true;
      } catch (err) {
        logger?.warn({ err: describeApiError(err) }, "kubernetes API not ready");
        return false;
      }
    },
    close: async () => {
      sessions.clearCaches();
      tokenReview.clearCache();
    },
    info: { mode: loaded.mode, server: loaded.server },
  };
}
