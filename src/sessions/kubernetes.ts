/**
 * Sessions in the Kubernetes backend (issue 4 §2, DESIGN §4): `AgenticSession` custom resources
 * (`vteam.ambient-code/v1alpha1`, plural `agenticsessions`, namespace = project). Read-only: the
 * platform owns sessions and their RBAC, so every write answers 405 `read_only_backend`.
 *
 * Roles: the owner is `spec.userContext.userId` (sanitised); anyone else gets a role from
 * SubjectAccessReviews on `agenticsessions/<session>` in the project namespace — `update` → `edit`
 * (may send turns), `get` → `view` (may watch), neither → `none`.
 *
 * API calls: `get` = 1 GET of the CR on a cold cache, 0 within 30 s. `roleOf` = the `get` above
 * plus, for a non-owner, 1 SAR (`update`) and, if denied, a second (`get`); each cached 30 s per
 * (user, groups, project, session, verb). Errors (403, 5xx, unreachable, timeout) are 503
 * `store_unavailable` and are never cached.
 */
import type { CustomObjectsApi, AuthorizationV1Api } from "@kubernetes/client-node";
import { TurnkeyError } from "../errors.ts";
import { sanitizeUserId } from "../names.ts";
import { TtlCache } from "../kubernetes/cache.ts";
import { isNotFound, kubeUnavailable } from "../kubernetes/errors.ts";
import type { CollaboratorRole, Session, SessionRole, SessionStore } from "./types.ts";

/** The AgenticSession CRD coordinates. */
export const AGENTIC_SESSION = { group: "vteam.ambient-code", version: "v1alpha1", plural: "agenticsessions" } as const;

/** Longest time a session read or a SAR answer is reused, in ms (issue 4 §5). */
export const SESSION_CACHE_MAX_TTL_MS = 30_000;

/**
 * The Kubernetes identity a SubjectAccessReview is made for. Kubernetes RBAC binds the
 * *original* username (e.g. `alice@example.com`, `oidc:alice`), not Turnkey's sanitised user ID,
 * so callers pass it when it differs; without it the sanitised ID is used as the username.
 */
export interface KubeSubject {
  username: string;
  groups?: string[];
  /** The TokenReview's `user.uid` and `user.extra`, passed on so the authorizer sees the same user (scoped tokens). */
  uid?: string;
  extra?: Record<string, string[]>;
}

/** Options of `KubernetesSessionStore`. */
export interface KubernetesSessionStoreOptions {
  customObjects: CustomObjectsApi;
  authorization: AuthorizationV1Api;
  /** Cache lifetime for session reads and SAR answers, ms; capped at 30 000. Default 30 000. */
  cacheTtlMs?: number;
  /** Lifetime of a cached "session does not exist", ms; default 5 000 (a new session shows up fast). */
  notFoundTtlMs?: number;
  now?: () => number;
}

interface AgenticSessionObject {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string | Date; uid?: string };
  spec?: { userContext?: { userId?: unknown; displayName?: unknown } };
}

const readOnly = (what: string) =>
  new TurnkeyError(405, "read_only_backend", `${what} is managed by the platform in the kubernetes backend`);

/** `SessionStore` over AgenticSession CRs and SubjectAccessReviews. */
export class KubernetesSessionStore implements SessionStore {
  readonly readOnly = true;
  #co: CustomObjectsApi;
  #authz: AuthorizationV1Api;
  #sessions: TtlCache<Session | null>;
  #sars: TtlCache<boolean>;
  #notFoundTtlMs: number;

  constructor(opts: KubernetesSessionStoreOptions) {
    this.#co = opts.customObjects;
    this.#authz = opts.authorization;
    const ttl = Math.min(opts.cacheTtlMs ?? SESSION_CACHE_MAX_TTL_MS, SESSION_CACHE_MAX_TTL_MS);
    this.#sessions = new TtlCache({ maxTtlMs: ttl, ...(opts.now ? { now: opts.now } : {}) });
    this.#sars = new TtlCache({ maxTtlMs: ttl, ...(opts.now ? { now: opts.now } : {}) });
    this.#notFoundTtlMs = opts.notFoundTtlMs ?? 5000;
  }

  /**
   * The session, or `null` when the CR does not exist (404) or has no owner.
   * @throws TurnkeyError 503 `store_unavailable` on any other failure.
   */
  async get(project: string, session: string): Promise<Session | null> {
    return this.#sessions.getOrLoad(`${project}/${session}`, async () => {
      let obj: AgenticSessionObject;
      try {
        obj = (await this.#co.getNamespacedCustomObject({ ...AGENTIC_SESSION, namespace: project, name: session })) as AgenticSessionObject;
      } catch (err) {
        if (isNotFound(err)) return { value: null, ttlMs: this.#notFoundTtlMs };
        throw kubeUnavailable("session store", "store_unavailable", err);
      }
      return { value: toSession(project, session, obj) };
    });
  }

  /** 405 `read_only_backend`: sessions are created through the platform. */
  async create(): Promise<Session> {
    throw readOnly("session creation");
  }

  /**
   * 405 `method_not_allowed`: listing would need `list` on agenticsessions, which the
   * least-privilege Role does not grant; use the platform's API to list sessions.
   */
  async list(): Promise<Session[]> {
    throw new TurnkeyError(405, "method_not_allowed", "listing sessions is not supported by the kubernetes backend");
  }

  /** 405 `read_only_backend`: collaborators are the platform's RBAC. */
  async setCollaborator(_p: string, _s: string, _u: string, _r: CollaboratorRole): Promise<Session> {
    throw readOnly("collaborator management");
  }

  /** 405 `read_only_backend`: collaborators are the platform's RBAC. */
  async removeCollaborator(): Promise<Session> {
    throw readOnly("collaborator management");
  }

  /**
   * `owner` if `userId` is the CR's owner (not when `subject` is a service account: an access key
   * is reviewed as itself); else `edit` if a SAR allows `update` on the session, `view` if it
   * allows `get`, else `none` (also for a missing session).
   * @param subject the user's Kubernetes identity when it differs from `userId` (see `KubeSubject`).
   * @throws TurnkeyError 503 `store_unavailable` when the CR or a SAR cannot be read (fail closed).
   */
  async roleOf(project: string, session: string, userId: string, subject?: KubeSubject): Promise<SessionRole> {
    const s = await this.get(project, session);
    if (s === null || !userId) return "none";
    // An access key (a service account acting for its creator) gets only what its own RoleBindings
    // allow, even when its creator owns the session (found by a break-it review: the owner's key
    // with no RoleBindings had the owner's full access).
    const actsAsServiceAccount = subject?.username.startsWith("system:serviceaccount:") ?? false;
    if (s.ownerId === userId && !actsAsServiceAccount) return "owner";
    const who: KubeSubject = subject ?? { username: userId };
    if (await this.#review(who, project, session, "update")) return "edit";
    if (await this.#review(who, project, session, "get")) return "view";
    return "none";
  }

  async #review(who: KubeSubject, project: string, session: string, verb: "update" | "get"): Promise<boolean> {
    const groups = [...(who.groups ?? [])].sort();
    const extra = who.extra ? Object.fromEntries(Object.entries(who.extra).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, [...v].sort()])) : undefined;
    const key = JSON.stringify([who.username, groups, who.uid ?? "", extra ?? {}, project, session, verb]);
    return this.#sars.getOrLoad(key, async () => {
      try {
        const res = await this.#authz.createSubjectAccessReview({
          body: {
            apiVersion: "authorization.k8s.io/v1",
            kind: "SubjectAccessReview",
            spec: {
              user: who.username,
              ...(groups.length ? { groups } : {}),
              ...(who.uid ? { uid: who.uid } : {}),
              ...(extra && Object.keys(extra).length ? { extra } : {}),
              resourceAttributes: { namespace: project, verb, group: AGENTIC_SESSION.group, resource: AGENTIC_SESSION.plural, name: session },
            },
          },
        });
        // An evaluation error with allowed=false is a denial as far as RBAC is concerned; the
        // API server sets it when e.g. a webhook authorizer failed: treat that as unavailable.
        if (!res.status?.allowed && res.status?.evaluationError && !res.status?.denied)
          throw new Error("subject access review evaluation error");
        return { value: res.status?.allowed === true };
      } catch (err) {
        throw kubeUnavailable("access review", "store_unavailable", err);
      }
    });
  }

  /** Drop cached session reads and SAR answers (counters are kept). */
  clearCaches(): void {
    this.#sessions.clear();
    this.#sars.clear();
  }

  /** Cache counters for `metrics()`: `sessions.*` and `sars.*`. */
  stats() {
    return { sessions: this.#sessions.stats(), sars: this.#sars.stats() };
  }
}

/** Map an AgenticSession CR to a `Session`; `null` when it names no usable owner. */
export function toSession(project: string, session: string, obj: AgenticSessionObject): Session | null {
  const uc = obj.spec?.userContext;
  const ownerId = typeof uc?.userId === "string" ? sanitizeUserId(uc.userId) : "";
  if (!ownerId) return null;
  const created = obj.metadata?.creationTimestamp;
  return {
    project,
    name: session,
    ownerId,
    ...(typeof uc?.displayName === "string" && uc.displayName ? { ownerName: uc.displayName } : {}),
    collaborators: [],
    createdAt: isoTime(created),
    ...(typeof obj.metadata?.uid === "string" && obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
  };
}

/** ISO 8601 of a CR timestamp (custom objects arrive as raw JSON strings); epoch when absent. */
function isoTime(t: string | Date | undefined): string {
  const d = t instanceof Date ? t : new Date(t ?? 0);
  return Number.isNaN(d.getTime()) ? new Date(0).toISOString() : d.toISOString();
}
