/**
 * OpenID Connect Discovery 1.0 for user-JWT keys (`TURNKEY_OIDC_DISCOVERY=issuer`, issue 4 §4):
 * the operator names only the IdP's issuer (Keycloak, Dex, Okta…), Turnkey reads
 * `<issuer>/.well-known/openid-configuration` and verifies tokens against its `jwks_uri` with jose.
 *
 * Rules, from the spec and RFC 8414:
 * - the document's `issuer` must be *identical* to the pinned one (Discovery §4.3; a mismatch
 *   means a misconfiguration or a mix-up attack) → 503, never accepted;
 * - `jwks_uri` must be `https:` (Discovery §3); plain `http:` only when the issuer itself is a
 *   loopback `http:` URL (a local IdP, the tests);
 * - fetched without credentials: nothing secret goes to the IdP.
 * A failed discovery is not remembered: the next request tries again (fail closed meanwhile, 503).
 */
import { createRemoteJWKSet, type JWTVerifyGetKey } from "jose";
import { identityUnavailable } from "./token-errors.ts";

/** What a discovery document must give us. */
export interface OpenIdConfiguration {
  issuer: string;
  jwksUri: URL;
}

/** What discovery yields: the issuer to pin, where keys come from, and jose's key resolver. */
export interface DiscoveredIssuer {
  issuer: string;
  jwksUrl: string;
  /** Refetches on an unknown `kid` (with jose's cooldown) and after the cache max age. */
  keys: JWTVerifyGetKey;
}

/** The discovery URL of an issuer: trailing `/` removed, then `/.well-known/openid-configuration` appended (Discovery §4). */
export function discoveryUrl(issuer: string): URL {
  return new URL(issuer.replace(/\/+$/, "") + "/.well-known/openid-configuration");
}

/** True for `http:` URLs on a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`). */
export function isLoopbackHttp(url: URL): boolean {
  return url.protocol === "http:" && (url.hostname === "localhost" || /^127(\.\d{1,3}){3}$/.test(url.hostname) || url.hostname === "[::1]");
}

/**
 * Fetch and check one openid-configuration document.
 * @param url the document's URL.
 * @param fetchFn how to fetch it (e.g. with a bearer token and a CA for the cluster's issuer).
 * @returns `issuer` and `jwks_uri` (as a URL) of the document.
 * @throws TurnkeyError 503 `identity_unavailable` when the fetch fails, the answer is not 200,
 *   not JSON, or lacks a string `issuer`/`jwks_uri`, or `jwks_uri` is not a URL.
 */
export async function readOpenIdConfiguration(url: URL, fetchFn: (url: URL) => Promise<Response>): Promise<OpenIdConfiguration> {
  let doc: { issuer?: unknown; jwks_uri?: unknown };
  try {
    const res = await fetchFn(url);
    if (!res.ok) throw new Error(`openid-configuration answered HTTP ${res.status}`);
    doc = (await res.json()) as typeof doc;
  } catch (err) {
    throw identityUnavailable(err);
  }
  if (typeof doc?.issuer !== "string" || typeof doc.jwks_uri !== "string") throw identityUnavailable(new Error("malformed openid-configuration"));
  try {
    return { issuer: doc.issuer, jwksUri: new URL(doc.jwks_uri) };
  } catch (err) {
    throw identityUnavailable(err);
  }
}

/** Options of `discoverIssuer`. */
export interface DiscoverIssuerOptions {
  /** The pinned issuer (`TURNKEY_JWT_ISSUER`), an `https:` URL or a loopback `http:` one. */
  issuer: string;
  /** Timeout of each fetch, ms; default 5000. */
  timeoutMs?: number;
  /** Longest a fetched JWKS is reused before jose refetches, ms; default 10 minutes. */
  cacheMaxAgeMs?: number;
}

/**
 * Discover `opts.issuer` and build its key set (rules in the module comment).
 * @throws TurnkeyError 503 `identity_unavailable` when the document cannot be read, names another
 *   issuer, or points its keys at a non-https URL.
 */
export async function discoverIssuer(opts: DiscoverIssuerOptions): Promise<DiscoveredIssuer> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const doc = await readOpenIdConfiguration(discoveryUrl(opts.issuer), (url) => fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "error" }));
  if (doc.issuer !== opts.issuer) throw identityUnavailable(new Error(`discovered issuer ${doc.issuer} is not the pinned ${opts.issuer}`));
  const plainAllowed = isLoopbackHttp(new URL(opts.issuer));
  if (doc.jwksUri.protocol !== "https:" && !(plainAllowed && isLoopbackHttp(doc.jwksUri)))
    throw identityUnavailable(new Error(`jwks_uri ${doc.jwksUri.href} is not https`));
  const keys = createRemoteJWKSet(doc.jwksUri, { timeoutDuration: timeoutMs, cacheMaxAge: opts.cacheMaxAgeMs ?? 10 * 60 * 1000 });
  return { issuer: doc.issuer, jwksUrl: doc.jwksUri.href, keys };
}

/**
 * Memoise a discovery: one in-flight or successful result is shared by every caller; a failure
 * is dropped so the next call tries again.
 * @example const source = memoiseDiscovery(() => discoverIssuer({ issuer })); await source();
 */
export function memoiseDiscovery<T>(discover: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= discover().catch((err) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
