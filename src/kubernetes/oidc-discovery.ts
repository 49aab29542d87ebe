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
import { createRemoteJWKSet, customFetch } from "jose";
import { readOpenIdConfiguration, type DiscoveredIssuer } from "../identity/oidc-discovery.ts";

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

/** What discovery yields: the `issuer` to pin, the URL keys come from (after the same-origin rule), jose's key resolver. */
export type ServiceAccountIssuer = DiscoveredIssuer;

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

  const doc = await readOpenIdConfiguration(new URL("/.well-known/openid-configuration", base), (url) => fetchWithAuth(url));
  let jwks = doc.jwksUri;
  if (jwks.origin !== base.origin) jwks = new URL(jwks.pathname + jwks.search, base);
  const keys = createRemoteJWKSet(jwks, {
    timeoutDuration: timeoutMs,
    cacheMaxAge: opts.cacheMaxAgeMs ?? 10 * 60 * 1000,
    [customFetch]: (url, init) => fetchWithAuth(url, init as RequestInit),
  });
  return { issuer: doc.issuer, jwksUrl: jwks.href, keys };
}
