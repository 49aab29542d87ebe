/**
 * Maps every failure to the wire shape `{ error, code }` with a 4xx/5xx status. Unknown errors
 * become 500 `internal_error` with a generic message: the original is logged (by name only),
 * never sent, so no stack and no secret reaches a client (DESIGN §7 rule 3).
 */
import { TurnkeyError, type ErrorCode } from "../errors.ts";

/** A JSON error response. */
export function errorResponse(status: number, code: ErrorCode, message: string, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify({ error: message, code }), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}

/** RFC 6750 §3: a 401 from a bearer-protected resource says so. */
const authHeaders = (status: number, code: ErrorCode): Record<string, string> | undefined =>
  status === 401 ? { "WWW-Authenticate": `Bearer realm="turnkey"${code === "invalid_token" || code === "token_expired" ? ', error="invalid_token"' : ""}` } : undefined;

/** Validation errors name where the problem is, never the offending value (it may be a secret). */
function describeValidation(err: { type?: string; valueError?: { path?: string; message?: string } }): { code: ErrorCode; message: string } {
  const where = err.type ?? "request";
  const path = err.valueError?.path || "";
  const field = path.replace(/^\//, "").replace(/\//g, ".");
  if ((where === "params" && (field === "project" || field === "session")) || (where === "body" && field === "name"))
    return { code: "invalid_name", message: `${field} must be a DNS-1123 label: 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit` };
  const what = err.valueError?.message ?? "is invalid";
  return { code: "validation_failed", message: field ? `invalid ${where}: ${field}: ${what}` : `invalid ${where}: ${what}` };
}

/**
 * Turn any thrown value from a handler into a Response.
 * @param code Elysia's error code (`VALIDATION`, `PARSE`, `NOT_FOUND`, ...), when known.
 */
export function toErrorResponse(error: unknown, code?: string | number): { response: Response; internal: boolean } {
  // Elysia wraps whatever a body parser throws in a ParseError; ours are TurnkeyErrors (413, 400).
  if (code === "PARSE" && (error as { cause?: unknown })?.cause instanceof TurnkeyError) error = (error as { cause: TurnkeyError }).cause;
  if (error instanceof TurnkeyError) return { response: errorResponse(error.status, error.code, error.message, authHeaders(error.status, error.code)), internal: false };
  switch (code) {
    case "VALIDATION": {
      const v = describeValidation(error as never);
      return { response: errorResponse(400, v.code, v.message), internal: false };
    }
    case "PARSE":
      return { response: errorResponse(400, "invalid_json", "request body is not valid JSON"), internal: false };
    case "NOT_FOUND":
      return { response: errorResponse(404, "not_found", "no such route"), internal: false };
  }
  const status = (error as { status?: unknown })?.status;
  if (status === 413) return { response: errorResponse(413, "payload_too_large", "request body too large"), internal: false };
  return { response: errorResponse(500, "internal_error", "internal error"), internal: true };
}

/** Shortest interval between two log lines for the same unavailable dependency, ms. */
export const UNAVAILABLE_LOG_INTERVAL_MS = 10_000;

/**
 * Log a 503 (identity provider or store unavailable) at warn with its cause, at most once per
 * `UNAVAILABLE_LOG_INTERVAL_MS` per error code, so operators see why requests fail during an
 * outage without one line per request. The cause is an error message from a fetch or the
 * Kubernetes client (URLs, HTTP status codes), never a token. Other errors are ignored.
 * @returns a function to call with every error.
 */
export function unavailableLogger(logger: { warn(obj: object, msg?: string): void }, now: () => number = Date.now): (err: unknown) => void {
  const last = new Map<string, number>();
  return (err) => {
    if (!(err instanceof TurnkeyError) || err.status !== 503) return;
    const t = now();
    if (t - (last.get(err.code) ?? -Infinity) < UNAVAILABLE_LOG_INTERVAL_MS) return;
    last.set(err.code, t);
    const cause = (err as { cause?: unknown }).cause;
    logger.warn({ code: err.code, reason: cause instanceof Error ? cause.message : cause === undefined ? err.message : String(cause) }, "dependency unavailable; requests get 503");
  };
}
