/**
 * What Turnkey sends to an HTTP runner (DESIGN §2.2, issue 3): the URL from the
 * `TURNKEY_RUNNER_URL` template, and request headers built from scratch for every turn. No
 * header of the client's request is ever copied, so a client-sent `Authorization`, `Cookie`,
 * `X-Current-User-*`, `X-Caller-Token`, `X-Runner-Current-User` or `X-Forwarded-*` cannot reach
 * the runner: the executors never see the client's request at all.
 */
import { readFile } from "node:fs/promises";
import { ConfigError } from "../errors.ts";
import { sanitizeDisplayName, sanitizeUserId } from "../names.ts";
import type { SupervisorLogger } from "./supervisor.ts";

/** Header names Turnkey sets on runner requests (lower case, as Bun's `Headers` reports them). */
export const RUNNER_HEADERS = {
  userId: "x-current-user-id",
  userName: "x-current-user-name",
  callerToken: "x-caller-token",
  sessionToken: "x-ambient-session-token",
} as const;

/**
 * Expand a runner URL template: `{project}` and `{session}` are replaced by the URL-encoded
 * names (they are DNS-1123 labels already; encoding is defence in depth).
 * @throws ConfigError if the result is not an absolute http(s) URL.
 * @example expandRunnerUrl("http://session-{session}.{project}.svc:8001/", "p", "s")
 *   // "http://session-s.p.svc:8001/"
 */
export function expandRunnerUrl(template: string, project: string, session: string): string {
  const url = template.replaceAll("{project}", encodeURIComponent(project)).replaceAll("{session}", encodeURIComponent(session));
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError("runnerUrl", "not a valid URL after substituting {project} and {session}");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new ConfigError("runnerUrl", "must be http:// or https://");
  return url;
}

/**
 * `<runner base>/<name>`: the runner URL with its path's trailing slashes removed, then
 * `/<name>` (query and fragment dropped). `http://h:8001/` → `http://h:8001/interrupt`.
 */
export function runnerEndpoint(runnerUrl: string, name: string): string {
  const u = new URL(runnerUrl);
  u.pathname = u.pathname.replace(/\/+$/, "") + "/" + name;
  u.search = "";
  u.hash = "";
  return u.toString();
}

/**
 * A header value from arbitrary Unicode text. Fetch only accepts ISO-8859-1 code points in
 * header values, so non-Latin-1 text is sent as its UTF-8 bytes (each byte one Latin-1 char):
 * on the wire that is UTF-8, as the upstream platform (Go `net/http`) sends it. The caller must
 * have removed control characters already.
 */
export function headerValue(text: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\u0020-\u007e]*$/.test(text) ? text : Buffer.from(text, "utf8").toString("latin1");
}

/** The turn fields the identity headers are made of. */
export interface RunnerIdentity {
  userId: string;
  userName: string;
  turnToken: string;
}

/**
 * The complete header set of a runner request: `X-Current-User-ID` (sanitised user ID, DESIGN
 * §1), `X-Current-User-Name` (`sanitizeDisplayName`: no CR/LF/control characters, ≤ 255
 * chars), `X-Caller-Token: Bearer <turn token>` (an upstream runner sends it verbatim as
 * `Authorization` to the credential endpoint), `X-Ambient-Session-Token` when a session token
 * is given, plus `extra` (content negotiation).
 */
export function runnerHeaders(id: RunnerIdentity, sessionToken: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = {
    ...extra,
    "X-Current-User-ID": sanitizeUserId(id.userId),
    "X-Current-User-Name": headerValue(sanitizeDisplayName(id.userName)),
    "X-Caller-Token": `Bearer ${id.turnToken}`,
  };
  if (sessionToken) h["X-Ambient-Session-Token"] = sessionToken;
  return h;
}

/**
 * Read the runner session token from `file` (config `runnerSessionTokenFile`). Read on every
 * call so a rotated token is picked up. Surrounding whitespace is trimmed.
 * @returns the token, or undefined (with a warning, never the value) when the file is missing,
 * unreadable, empty, or holds characters that are not visible ASCII (they could split headers).
 */
export async function readSessionToken(file: string | undefined, log: SupervisorLogger): Promise<string | undefined> {
  if (!file) return undefined;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    log.warn({ file, code: (err as NodeJS.ErrnoException).code }, "runner session token file unreadable; X-Ambient-Session-Token omitted");
    return undefined;
  }
  const token = text.trim();
  if (!/^[\x21-\x7e]+$/.test(token)) {
    log.warn({ file }, "runner session token file empty or malformed; X-Ambient-Session-Token omitted");
    return undefined;
  }
  return token;
}
