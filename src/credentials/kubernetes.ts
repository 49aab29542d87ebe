/**
 * Credentials in the Kubernetes backend (issue 4 §3, DESIGN §4): the upstream platform's Secrets
 * in `TURNKEY_CREDENTIALS_NAMESPACE`, JSON values keyed by user ID.
 *
 * | provider   | Secret                        | key                                 | value                                            |
 * |------------|-------------------------------|-------------------------------------|--------------------------------------------------|
 * | github     | `github-pat-credentials`      | user ID                             | `{token, userName?, email?, expiresAt?}`         |
 * | gitlab     | `gitlab-credentials`          | user ID                             | `{token, instanceUrl, userName?, email?}`        |
 * | jira       | `jira-credentials`            | user ID                             | `{url, email, apiToken}`                         |
 * | google     | `google-oauth-credentials`    | user ID with `:` and `/` → `-`      | `{email, accessToken, refreshToken, scopes, expiresAt}` |
 * | coderabbit | `coderabbit-credentials`      | user ID                             | `{apiKey}`                                       |
 * | gerrit     | `gerrit-credentials-<userId>` | instance name                       | `{url, username, httpPassword}` per key          |
 *
 * A missing Secret, a missing key or an unusable value is `null` ("not configured") for every
 * provider alike. The project-wide legacy `GITHUB_TOKEN` is never read: only the user's own key.
 * Read-only: writes are 405 `read_only_backend`.
 *
 * Caching: none. Every `get` is exactly one Secret GET (cold or warm), so a revoked credential
 * stops being served at once; `list` is one GET per provider, in parallel. Failures (403, 5xx,
 * unreachable, timeout) are 503 `store_unavailable`.
 */
import type { CoreV1Api, V1Secret } from "@kubernetes/client-node";
import { TurnkeyError } from "../errors.ts";
import { isNotFound, kubeUnavailable } from "../kubernetes/errors.ts";
import { PROVIDERS, type ProviderName } from "./providers.ts";
import type { CredentialRecords, CredentialStore, CredentialSummary, GerritInstance } from "./types.ts";

/** Secret names of the single-Secret providers (the least-privilege Role lists exactly these). */
export const CREDENTIAL_SECRETS = {
  github: "github-pat-credentials",
  gitlab: "gitlab-credentials",
  jira: "jira-credentials",
  google: "google-oauth-credentials",
  coderabbit: "coderabbit-credentials",
} as const satisfies Record<Exclude<ProviderName, "gerrit">, string>;

/** Name of a user's Gerrit Secret. */
export const gerritSecretName = (userId: string) => `gerrit-credentials-${userId}`;

/** Key of a user's entry in `google-oauth-credentials`: `:` and `/` replaced by `-` (upstream rule). */
export const googleSecretKey = (userId: string) => userId.replace(/[:/]/g, "-");

/** RFC 1123 subdomain, the rule for Secret names. */
const DNS1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Options of `KubernetesCredentialStore`. */
export interface KubernetesCredentialStoreOptions {
  core: CoreV1Api;
  /** Namespace of the platform's credential Secrets (`Config.credentialsNamespace`). */
  namespace: string;
}

type Json = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const opt = <K extends string>(k: K, v: unknown): Partial<Record<K, string>> => {
  const s = str(v);
  return s === undefined ? {} : ({ [k]: s } as Record<K, string>);
};

function parseJson(raw: string | undefined): Json | null {
  if (raw === undefined) return null;
  try {
    const v = JSON.parse(raw);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : null;
  } catch {
    return null;
  }
}

/**
 * Decode one Secret key (the API returns base64 in `data`); `undefined` when absent or not a
 * string. Own keys only: a user ID such as `constructor` or `__proto__` must not find an inherited
 * member (that was a 500 in a break-it review).
 */
function secretValue(secret: V1Secret, key: string): string | undefined {
  const own = (map: Record<string, unknown> | undefined) => (map && Object.hasOwn(map, key) && typeof map[key] === "string" ? (map[key] as string) : undefined);
  const b64 = own(secret.data as Record<string, unknown> | undefined);
  if (b64 !== undefined) return Buffer.from(b64, "base64").toString("utf8");
  return own(secret.stringData as Record<string, unknown> | undefined);
}

/** Map a stored JSON value to the provider's record; `null` when a required field is missing. */
export function toRecord<P extends Exclude<ProviderName, "gerrit">>(provider: P, v: Json | null): CredentialRecords[P] | null {
  if (!v) return null;
  let out: unknown = null;
  switch (provider) {
    case "github":
      if (str(v.token)) out = { token: v.token, ...opt("userName", v.userName), ...opt("email", v.email), ...opt("expiresAt", v.expiresAt) };
      break;
    case "gitlab":
      if (str(v.token)) out = { token: v.token, ...opt("instanceUrl", v.instanceUrl), ...opt("userName", v.userName), ...opt("email", v.email) };
      break;
    case "jira":
      if (str(v.url) && str(v.email) && str(v.apiToken)) out = { url: v.url, email: v.email, apiToken: v.apiToken };
      break;
    case "google":
      if (str(v.accessToken) && str(v.email))
        out = {
          accessToken: v.accessToken,
          email: v.email,
          expiresAt: str(v.expiresAt) ?? new Date(0).toISOString(),
          ...opt("refreshToken", v.refreshToken),
          ...(Array.isArray(v.scopes) ? { scopes: v.scopes.filter((s): s is string => typeof s === "string") } : {}),
          ...opt("clientId", v.clientId),
          ...opt("clientSecret", v.clientSecret),
        };
      break;
    case "coderabbit":
      if (str(v.apiKey)) out = { apiKey: v.apiKey };
      break;
  }
  return out as CredentialRecords[P] | null;
}

/** Gerrit instances from a per-user Secret: one key per instance name, sorted by name. */
export function toGerrit(secret: V1Secret): CredentialRecords["gerrit"] | null {
  const names = new Set([...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})]);
  const instances: GerritInstance[] = [];
  for (const name of [...names].sort()) {
    const v = parseJson(secretValue(secret, name));
    if (v && str(v.url) && str(v.username) && str(v.httpPassword))
      instances.push({ name, url: v.url as string, username: v.username as string, httpPassword: v.httpPassword as string });
  }
  return instances.length ? { instances } : null;
}

const readOnly = () => new TurnkeyError(405, "read_only_backend", "credentials are managed by the platform in the kubernetes backend");

/** `CredentialStore` over the platform's Secrets. */
export class KubernetesCredentialStore implements CredentialStore {
  readonly readOnly = true;
  #core: CoreV1Api;
  #ns: string;

  constructor(opts: KubernetesCredentialStoreOptions) {
    this.#core = opts.core;
    this.#ns = opts.namespace;
  }

  /** The Secret, or `null` on 404. @throws TurnkeyError 503 `store_unavailable`. */
  async #secret(name: string): Promise<V1Secret | null> {
    try {
      return await this.#core.readNamespacedSecret({ name, namespace: this.#ns });
    } catch (err) {
      if (isNotFound(err)) return null;
      throw kubeUnavailable("credential store", "store_unavailable", err);
    }
  }

  /**
   * The user's credential for `provider`, or `null` when not configured. One Secret GET.
   * @throws TurnkeyError 503 `store_unavailable` when the Secret cannot be read.
   */
  async get<P extends ProviderName>(userId: string, provider: P): Promise<CredentialRecords[P] | null> {
    return (await this.#read(userId, provider))?.record ?? null;
  }

  async #read<P extends ProviderName>(userId: string, provider: P): Promise<{ record: CredentialRecords[P]; secret: V1Secret } | null> {
    if (!userId) return null;
    if (provider === "gerrit") {
      const name = gerritSecretName(userId);
      // The platform cannot have created a Secret with an invalid name: skip the call.
      if (!DNS1123_SUBDOMAIN.test(name)) return null;
      const secret = await this.#secret(name);
      const record = secret && toGerrit(secret);
      return record ? { record: record as CredentialRecords[P], secret } : null;
    }
    const p = provider as Exclude<ProviderName, "gerrit">;
    const secret = await this.#secret(CREDENTIAL_SECRETS[p]);
    if (!secret) return null;
    const key = p === "google" ? googleSecretKey(userId) : userId;
    const record = toRecord(p, parseJson(secretValue(secret, key)));
    return record ? { record: record as CredentialRecords[P], secret } : null;
  }

  /** 405 `read_only_backend`. */
  async put(): Promise<void> {
    throw readOnly();
  }

  /** 405 `read_only_backend`. */
  async delete(): Promise<boolean> {
    throw readOnly();
  }

  /**
   * Providers the user has a usable credential for. `updatedAt` is the Secret's newest
   * managed-field time, else its creation time (Secrets keep no per-key timestamp).
   * @throws TurnkeyError 503 `store_unavailable` if any Secret cannot be read.
   */
  async list(userId: string): Promise<CredentialSummary[]> {
    const found = await Promise.all(PROVIDERS.map(async (provider) => ({ provider, hit: await this.#read(userId, provider) })));
    return found.filter((f) => f.hit !== null).map((f) => ({ provider: f.provider, updatedAt: secretTime(f.hit!.secret) }));
  }
}

function secretTime(s: V1Secret): string {
  const times = (s.metadata?.managedFields ?? []).map((m) => m.time).filter((t): t is Date => t instanceof Date);
  const created = s.metadata?.creationTimestamp;
  const t = times.sort((a, b) => b.getTime() - a.getTime())[0] ?? (created instanceof Date ? created : undefined);
  return (t ?? new Date(0)).toISOString();
}
