/**
 * Classifying failures of Kubernetes API calls. `@kubernetes/client-node` 2.x throws an
 * `ApiException` with the HTTP status in `code` for answered requests, and a plain
 * `TypeError`/`DOMException` (`TimeoutError`, `AbortError`) for transport failures.
 *
 * Only 404 NotFound means "absent"; everything else — 401/403 (our own RBAC is wrong), 409, 429,
 * 5xx, connection refused, TLS failure, timeout — is "unavailable" and must deny (DESIGN §7
 * rule 4): never read as "no credential", never as "no access".
 */
import { ApiException } from "@kubernetes/client-node";
import { TurnkeyError, unavailable, type ErrorCode } from "../errors.ts";

/** The HTTP status of an answered API call, or `undefined` for a transport failure. */
export function apiStatus(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** True iff the API server answered 404 (a `Status` with reason NotFound). */
export function isNotFound(err: unknown): boolean {
  return apiStatus(err) === 404;
}

/**
 * A short, secret-free description for logs: `HTTP 403 Forbidden`, `TimeoutError`,
 * `UNABLE_TO_VERIFY_LEAF_SIGNATURE` … The response body is left out (it may echo request data).
 */
export function describeApiError(err: unknown): string {
  const status = apiStatus(err);
  if (status !== undefined) {
    let reason = "";
    const body = (err as { body?: unknown }).body;
    try {
      const parsed = typeof body === "string" ? JSON.parse(body) : body;
      if (parsed && typeof parsed === "object" && typeof (parsed as { reason?: unknown }).reason === "string")
        reason = ` ${(parsed as { reason: string }).reason}`;
    } catch {
      // not a Status object
    }
    return `HTTP ${status}${reason}`;
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? `${err.name} ${code}` : err.name;
  }
  return "unknown error";
}

/**
 * 503 with `code` (`store_unavailable` or `identity_unavailable`) and a generic message naming
 * what was being read; the original error is kept as a non-enumerable `cause` for the log only.
 */
export function kubeUnavailable(what: string, code: Extract<ErrorCode, "store_unavailable" | "identity_unavailable">, err: unknown): TurnkeyError {
  const e = unavailable(`kubernetes API unavailable (${what}): ${describeApiError(err)}`, code);
  Object.defineProperty(e, "cause", { value: err, enumerable: false });
  return e;
}
