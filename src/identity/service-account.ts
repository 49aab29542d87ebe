/**
 * Mapping a Kubernetes service-account subject to a Turnkey principal (issue 4 §4). Pure: the
 * caller reads the ServiceAccount and passes its labels and annotations in.
 *
 * | ServiceAccount                                                       | principal                                   |
 * |----------------------------------------------------------------------|---------------------------------------------|
 * | label `app=ambient-runner`, name `ambient-session-<session>`         | `service`, bound to project=ns, session     |
 * | label `app=ambient-access-key`, annotation `ambient-code.io/created-by-user-id` | `user` = that (sanitised) user ID |
 * | any other (including a runner/access-key SA missing its name/annotation, `default`) | none: not a Turnkey caller (401) |
 *
 * A runner account is never its session's owner: it gets credentials only for the user of an
 * active run in its own session (DESIGN §2.3). Every other account is refused: an earlier version
 * made them `service` principals of their namespace, which let `default`, a deleted runner account
 * or a broken access key read any active-run user's credentials in any session of the project
 * (found by a break-it review).
 */
import { isDns1123Label, sanitizeUserId } from "../names.ts";
import type { Principal } from "./principal.ts";

/** Label key/values and annotation the platform puts on its service accounts. */
export const RUNNER_SA_LABEL = { key: "app", value: "ambient-runner" } as const;
/** Label of the platform's access-key ServiceAccounts (issue 4 §4). */
export const ACCESS_KEY_SA_LABEL = { key: "app", value: "ambient-access-key" } as const;
/** Annotation naming the user an access key acts for (issue 4 §4). */
export const CREATED_BY_USER_ANNOTATION = "ambient-code.io/created-by-user-id";
/** Runner accounts are named `ambient-session-<session>`. */
export const RUNNER_SA_PREFIX = "ambient-session-";

/** `{namespace, name}` of a `system:serviceaccount:<ns>:<name>` username, else `null`. */
export function parseServiceAccountUsername(username: string): { namespace: string; name: string } | null {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  return m ? { namespace: m[1]!, name: m[2]! } : null;
}

/** What `classifyServiceAccount` needs of the ServiceAccount object. */
export interface ServiceAccountMeta {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The principal for an authenticated service account (table above); `null` for every other account. */
export function classifyServiceAccount(sa: ServiceAccountMeta): Principal | null {
  const username = `system:serviceaccount:${sa.namespace}:${sa.name}`;
  const app = sa.labels?.[RUNNER_SA_LABEL.key];
  if (app === RUNNER_SA_LABEL.value && sa.name.startsWith(RUNNER_SA_PREFIX)) {
    const session = sa.name.slice(RUNNER_SA_PREFIX.length);
    if (isDns1123Label(session)) return { kind: "service", name: username, project: sa.namespace, session };
  }
  if (app === ACCESS_KEY_SA_LABEL.value) {
    const raw = sa.annotations?.[CREATED_BY_USER_ANNOTATION];
    const userId = raw ? sanitizeUserId(raw) : "";
    if (userId) return { kind: "user", userId, userName: userId, source: "kubernetes" };
  }
  return null;
}
