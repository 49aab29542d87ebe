/**
 * Issuer discovery for the cluster's service-account token issuer (issue 4 §4): fetch
 * `<api server>/.well-known/openid-configuration`, then its `jwks_uri`, authenticating with the
 * pod's own token and trusting the cluster CA, and hand jose a key set the JWT authenticator can
 * verify against (`jwtVerify(token, keys, { issuer, audience })`).
 *
 * The pod's token is only ever sent to the configured API server: if the advertised `jwks_uri`
 * has another origin (clusters often advertise the API server's external address), its path is
 * fetched from the configured API server instead, which serves `/openid/v1/jwks` itself.
 *
 * TLS: these requests use Bun's `fetch` directly with `tls.ca` (which Bun honours), so they work
 * even without `NODE_EXTRA_CA_CERTS`; client-node's calls still need it (see client.ts).
 */
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from "jose";
import { identityUnavailable } from "../identity/token-errors.ts";

/** Options of `discoverServiceAccountIssuer`. */
export interface ServiceAccountIssuerOptions {
  /** API server base URL, e.g. `https://10.96.0.1:443` (`LoadedKubeConfig.server`). */
  apiServer: string;
  /** Current bearer token (read fresh per request; projected tokens rotate). */
  token: () => string | undefined;
  /** PEM of the cluster CA; unset = the system trust store. */
  caPem?: string;
  /** Per-request timeout in ms; default 5000. */
  timeoutMs?: number;
  /** Maximum JWKS cache age in ms before jose refetches; default 10 minutes. */
  cacheMaxAgeMs?: number;
}

/** What discovery yields. */
export interface ServiceAccountIssuer {
  /** The `issuer` to pin in `jwtVerify`. */
  issuer: string;
  /** The URL the keys are fetched from (after the same-origin rule). */
  jwksUrl: string;
  /** jose key resolver: refetches on unknown `kid` (with jose's cooldown) and after `cacheMaxAgeMs`. */
  keys: JWTVerifyGetKey;
}

/**
 * Discover the service-account issuer and build its key set.
 * @throws TurnkeyError 503 `identity_unavailable` when discovery fails (unreachable, non-200,
 *   malformed document).
 */
export async function discoverServiceAccountIssuer(opts: ServiceAccountIssuerOptions): Promise<ServiceAccountIssuer> {
  const base = new URL(opts.apiServer);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const fetchWithAuth = (url: string | URL, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    const tok = opts.token();
    if (tok && new URL(url).origin === base.origin) headers.set("authorization", `Bearer ${tok}`);
    return fetch(url, {
      ...init,
      headers,
      signal: init.signal ?? AbortSignal.timeout(timeoutMs),
      ...(opts.caPem ? { tls: { ca: opts.caPem } } : {}),
    } as RequestInit);
  };

  let doc: { issuer?: unknown; jwks_uri?: unknown };
  try {
    const res = await fetchWithAuth(new URL("/.well-known/openid-configuration", base));
    if (!res.ok) throw new Error(`openid-configuration answered HTTP ${res.status}`);
    doc = (await res.json()) as typeof doc;
  } catch (err) {
    throw identityUnavailable(err);
  }
  if (typeof doc.issuer !== "string" || typeof doc.jwks_uri !== "string") throw identityUnavailable(new Error("malformed openid-configuration"));
  let jwks: URL;
  try {
    jwks = new URL(doc.jwks_uri);
  } catch (err) {
    throw identityUnavailable(err);
  }
  if (jwks.origin !== base.origin) jwks = new URL(jwks.pathname + jwks.search, base);
  const keys = createRemoteJWKSet(jwks, {
    timeoutDuration: timeoutMs,
    cacheMaxAge: opts.cacheMaxAgeMs ?? 10 * 60 * 1000,
    [customFetch]: (url, init) => fetchWithAuth(url, init as RequestInit),
  });
  return { issuer: doc.issuer, jwksUrl: jwks.href, keys };
}
