/**
 * The process logger: pino, one JSON object per line, on **stderr**. Stdout is kept for command
 * output (`turnkey token` prints a token there) and for audit records in `audit: stdout` mode,
 * so a pipeline can tell them apart.
 *
 * Secrets never reach a log line (DESIGN §7 rule 3): values at the paths in `REDACT_PATHS` are
 * replaced by `[REDACTED]` before serialisation. Redaction is a safety net, not a licence: code
 * still must not log credential objects on purpose.
 */
import pino, { type DestinationStream } from "pino";

/** The logger type every module takes (a pino logger). */
export type Logger = pino.Logger;

/** Log levels accepted by `createLogger` (the same set as `Config.logLevel`). */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/** Keys whose values are secret wherever they appear (top level, or one object level down). */
const SECRET_KEYS = [
  "authorization",
  "Authorization",
  "cookie",
  "token",
  "accessToken",
  "access_token",
  "refreshToken",
  "refresh_token",
  "idToken",
  "id_token",
  "apiKey",
  "apiToken",
  "password",
  "secret",
  "clientSecret",
  "client_secret",
  "masterKey",
  "privateKey",
  "turnToken",
  '["x-caller-token"]',
];

/**
 * pino/fast-redact paths redacted in every line. fast-redact has no deep wildcard, so common
 * nestings (`headers`, `req.headers`, `*.headers`) are listed explicitly.
 */
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => (k.startsWith("[") ? `*${k}` : `*.${k}`)),
  ...["headers", "req.headers", "*.headers"].flatMap((p) => [
    `${p}.authorization`,
    `${p}.cookie`,
    `${p}["x-caller-token"]`,
    `${p}["x-forwarded-access-token"]`,
  ]),
];

/**
 * Create the process logger.
 * @param level minimum level written; `silent` writes nothing.
 * @param destination where lines go; default stderr (fd 2). Tests pass an in-memory stream.
 * @example
 * const log = createLogger("info");
 * log.info({ headers: { authorization: "Bearer x" } }, "request"); // authorization → [REDACTED]
 */
export function createLogger(level: LogLevel | (string & {}) = "info", destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: "turnkey" },
      redact: { paths: [...REDACT_PATHS], censor: "[REDACTED]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
