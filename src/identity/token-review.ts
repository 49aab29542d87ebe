/**
 * Opaque bearer tokens through Kubernetes TokenReview (issue 4 §4, DESIGN §5 `kubernetes`).
 *
 * `Authorization: Bearer <t>` → `POST /apis/authentication.k8s.io/v1/tokenreviews` with
 * `spec.audiences = Config.tokenAudiences`. Authenticated subjects map to principals:
 * - `system:serviceaccount:<ns>:<name>` → the ServiceAccount is read (GET, for its labels and
 *   annotations) and classified by `classifyServiceAccount` (runner → `service` bound to its
 *   session; access key → its creator `user`; any other, or one Turnkey cannot read → 401);
 * - any other username → a `user` principal with the sanitised username as ID and the original
 *   as `userName` (RBAC in the cluster binds the original).
 *
 * Caching: keyed by SHA-256 of the token (the raw token is never stored or logged); a positive
 * answer lives until min(token `exp`, 60 s), a negative one 10 s; errors are never cached.
 * API calls per request: cold = 1 TokenReview (+1 ServiceAccount GET for service accounts);
 * warm = 0.
 *
 * Errors: not authenticated / wrong audience / unknown service account → 401 `invalid_token`; API
 * unreachable, 403 on the review, 5xx, timeout → 503 `identity_unavailable` (never a fallback to a
 * bot or the owner). With audiences requested, the answer must name one of them: an empty or
 * missing `status.audiences` means the API server's own audiences (TokenReview API), not ours.
 */
import { createHash } from "node:crypto";
import { decodeJwt } from "jose";
import type { AuthenticationV1Api, CoreV1Api } from "@kubernetes/client-node";
import { sanitizeDisplayName, sanitizeUserId } from "../names.ts";
import { TtlCache } from "../kubernetes/cache.ts";
import { apiStatus, isNotFound, kubeUnavailable } from "../kubernetes/errors.ts";
import type { Authenticator, Principal } from "./principal.ts";
import { classifyServiceAccount, parseServiceAccountUsername } from "./service-account.ts";
import { invalidToken } from "./token-errors.ts";
import { bearerToken } from "./bearer.ts";
import type { AuthRequest, BearerAuthenticator } from "./authenticate.ts";

/** Longest reuse of a token review, ms (issue 4 §5). */
export const TOKEN_REVIEW_MAX_TTL_MS = 60_000;
/** Reuse of a negative review, ms. */
export const TOKEN_REVIEW_NEGATIVE_TTL_MS = 10_000;

/** Options of `TokenReviewAuthenticator`. */
export interface TokenReviewAuthenticatorOptions {
  authentication: AuthenticationV1Api;
  core: CoreV1Api;
  /** `spec.audiences` of each review (`Config.tokenAudiences`); empty = the API server's own. */
  audiences: readonly string[];
  /**
   * JWT issuers handled by other authenticators (the gateway's turn tokens, the configured user
   * issuer): such tokens are left alone (`null`) and never sent to the API server.
   */
  skipIssuers?: readonly string[];
  now?: () => number;
}

type Cached = { ok: true; principal: Principal } | { ok: false };

/** SHA-256 hex of a token: the only form in which a token is kept. */
export const tokenDigest = (token: string) => createHash("sha256").update(token).digest("hex");

/** `exp` (epoch seconds), `iss` and `sub` of a JWT-shaped token, read without verification (routing only). */
function peekJwt(token: string): { exp?: number; iss?: string; sub?: string } {
  try {
    const c = decodeJwt(token);
    return {
      ...(typeof c.exp === "number" ? { exp: c.exp } : {}),
      ...(typeof c.iss === "string" ? { iss: c.iss } : {}),
      ...(typeof c.sub === "string" ? { sub: c.sub } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * Maps a Kubernetes username to a principal, reading ServiceAccounts as needed. Exported so a JWT
 * authenticator that verifies service-account tokens locally can classify them the same way.
 * `username`/`groups` end up on `user` principals for access reviews: a human's own, and for an
 * access key the service account's (the key's RoleBindings, not everything its creator may do).
 * @throws TurnkeyError 503 `identity_unavailable` when the ServiceAccount cannot be read.
 */
export async function principalForKubernetesUser(
  core: CoreV1Api,
  username: string,
  groups: readonly string[] = [],
  more: { uid?: string; extra?: Record<string, string[]> } = {},
): Promise<Principal | null> {
  // uid/extra as the TokenReview gave them: access reviews must see the same user (e.g. the scopes
  // of an OpenShift scoped token live in `extra`; dropping them reviewed the user's full RBAC).
  const identity = { username, ...(groups.length ? { groups: [...groups] } : {}), ...(more.uid ? { uid: more.uid } : {}), ...(more.extra && Object.keys(more.extra).length ? { extra: more.extra } : {}) };
  const sa = parseServiceAccountUsername(username);
  if (sa) {
    try {
      const obj = await core.readNamespacedServiceAccount({ name: sa.name, namespace: sa.namespace });
      const p = classifyServiceAccount({ ...sa, labels: obj.metadata?.labels ?? {}, annotations: obj.metadata?.annotations ?? {} });
      // An access key acts as its creator (their credentials) with the key's own RBAC: access
      // reviews are made for the service account, so a key can do no more than it was bound to.
      return p?.kind === "user" ? { ...p, ...identity } : p;
    } catch (err) {
      // Deleted (404), or in a namespace Turnkey may not read (403: not one of its projects): not
      // a runner or access key Turnkey knows, so not a caller at all.
      if (isNotFound(err) || apiStatus(err) === 403) return null;
      throw kubeUnavailable("service account lookup", "identity_unavailable", err);
    }
  }
  const userId = sanitizeUserId(username);
  if (!userId) return null;
  // `username`/`groups` as the API server named them: SubjectAccessReviews must use these.
  return { kind: "user", userId, userName: sanitizeDisplayName(username), source: "kubernetes", ...identity };
}

/**
 * TokenReview authenticator. Use it as a `members` entry of `createAuthenticator` (after turn and
 * bot tokens, before the JWT member), or standalone as an `Authenticator`.
 * Routing: a JWT whose `iss` is in `skipIssuers` is passed on (`null`) unless its `sub` is a
 * service account (`system:serviceaccount:…`): service-account tokens always go to TokenReview,
 * which checks bound-object revocation and lets us classify the account.
 */
export class TokenReviewAuthenticator implements Authenticator, BearerAuthenticator {
  readonly name = "kubernetes";
  #authn: AuthenticationV1Api;
  #core: CoreV1Api;
  #audiences: string[];
  #skip: Set<string>;
  #now: () => number;
  #cache: TtlCache<Cached>;

  constructor(opts: TokenReviewAuthenticatorOptions) {
    this.#authn = opts.authentication;
    this.#core = opts.core;
    this.#audiences = [...opts.audiences];
    this.#skip = new Set(opts.skipIssuers ?? []);
    this.#now = opts.now ?? Date.now;
    this.#cache = new TtlCache({ maxTtlMs: TOKEN_REVIEW_MAX_TTL_MS, now: this.#now });
  }

  /**
   * @returns the principal; `null` without a bearer token or for a JWT of a skipped issuer.
   * @throws TurnkeyError 401 `invalid_token` (also for a malformed header), 503 `identity_unavailable`.
   */
  async authenticate(req: AuthRequest): Promise<Principal | null> {
    const token = bearerToken(req.headers);
    return token === null ? null : this.authenticateBearer(token);
  }

  /** `BearerAuthenticator` form; same results as `authenticate`. */
  async authenticateBearer(token: string): Promise<Principal | null> {
    const { exp, iss, sub } = peekJwt(token);
    if (iss !== undefined && this.#skip.has(iss) && !sub?.startsWith("system:serviceaccount:")) return null;
    const result = await this.#cache.getOrLoad(tokenDigest(token), () => this.#review(token, exp));
    if (!result.ok) throw invalidToken();
    return result.principal;
  }

  async #review(token: string, exp: number | undefined): Promise<{ value: Cached; ttlMs: number }> {
    const untilExp = exp === undefined ? TOKEN_REVIEW_MAX_TTL_MS : exp * 1000 - this.#now();
    let status;
    try {
      const res = await this.#authn.createTokenReview({
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, ...(this.#audiences.length ? { audiences: this.#audiences } : {}) } },
      });
      status = res.status;
    } catch (err) {
      throw kubeUnavailable("token review", "identity_unavailable", err);
    }
    const negative = { value: { ok: false } as Cached, ttlMs: TOKEN_REVIEW_NEGATIVE_TTL_MS };
    if (status?.authenticated !== true || typeof status.user?.username !== "string" || !status.user.username) return negative;
    // The API server answers with the audiences it accepted; demand one of ours (absent = its own).
    if (this.#audiences.length && !(status.audiences ?? []).some((a) => this.#audiences.includes(a))) return negative;
    const principal = await principalForKubernetesUser(this.#core, status.user.username, status.user.groups ?? [], {
      ...(typeof status.user.uid === "string" && status.user.uid ? { uid: status.user.uid } : {}),
      ...(status.user.extra ? { extra: status.user.extra } : {}),
    });
    if (!principal) return negative;
    return { value: { ok: true, principal }, ttlMs: Math.min(untilExp, TOKEN_REVIEW_MAX_TTL_MS) };
  }

  /** Drop cached reviews (counters are kept). */
  clearCache(): void {
    this.#cache.clear();
  }

  /** Cache counters (`hits`, `misses`, `size`) for `metrics()`. */
  stats() {
    return this.#cache.stats();
  }
}
