/**
 * Typed errors with a stable machine `code`, after jose's `ERR_*` classes: callers branch on
 * `code`, never on `message`. The HTTP layer maps every `TurnkeyError` to
 * `{ error: message, code }` with `status`; anything else becomes a 500 `internal_error`
 * with a generic message (the original is logged, never sent).
 *
 * Messages must never contain a secret value (DESIGN §7 rule 3).
 */
export type ErrorCode =
  | "bad_request"
  | "invalid_json"
  | "invalid_name"
  | "validation_failed"
  | "payload_too_large"
  | "unsupported_media_type"
  | "upgrade_required"
  | "unknown_provider"
  | "unauthenticated"
  | "invalid_token"
  | "token_expired"
  | "forbidden"
  | "not_found"
  | "session_not_found"
  | "credential_not_found"
  | "session_exists"
  | "session_busy"
  | "run_not_found"
  | "too_many_turns"
  | "too_many_watchers"
  | "method_not_allowed"
  | "read_only_backend"
  | "identity_unavailable"
  | "store_unavailable"
  | "runner_unavailable"
  | "config_invalid"
  | "internal_error";

/** Base class: `status` is the HTTP status the error maps to. */
export class TurnkeyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TurnkeyError";
    this.status = status;
    this.code = code;
  }
  /** The wire shape, `{ error, code }`. */
  toJSON(): { error: string; code: ErrorCode } {
    return { error: this.message, code: this.code };
  }
}

/** 400: the request is malformed. */
export const badRequest = (message: string, code: ErrorCode = "bad_request") =>
  new TurnkeyError(400, code, message);
/** 401: no, invalid or expired credentials (RFC 6750 §3.1 `invalid_token`). */
export const unauthenticated = (message = "authentication required", code: ErrorCode = "unauthenticated") =>
  new TurnkeyError(401, code, message);
/** 403: authenticated, but the RBAC decision denies. */
export const forbidden = (message = "forbidden", code: ErrorCode = "forbidden") =>
  new TurnkeyError(403, code, message);
/** 404: the thing does not exist (or the caller may not learn that it does). */
export const notFound = (message: string, code: ErrorCode = "not_found") => new TurnkeyError(404, code, message);
/** 409: conflicts with current state (a session already exists, a turn already runs). */
export const conflict = (message: string, code: ErrorCode) => new TurnkeyError(409, code, message);
/** 503: a dependency we must not fail open on (identity, store) is unavailable (DESIGN §7 rule 4). */
export const unavailable = (message: string, code: ErrorCode) => new TurnkeyError(503, code, message);

/** Raised for a bad setting at start; `setting` names the flag or variable. */
export class ConfigError extends Error {
  readonly code = "config_invalid" as const;
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(`invalid setting ${setting}: ${message}`);
    this.name = "ConfigError";
    this.setting = setting;
  }
}
