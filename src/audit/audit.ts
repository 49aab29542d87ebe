/**
 * The audit sink (DESIGN §7 rule 5): one JSON line per credential decision and per turn start and
 * end. Subjects are HMAC-SHA256'd with a per-installation key before they are written, after
 * Vault's audit devices: records correlate (same user → same hash, across restarts) without the
 * log holding raw user IDs, and the hashes cannot be reversed by guessing IDs without the key.
 *
 * `principal` = hash(`principalSubject`, e.g. `user:alice`); `effectiveUser` = hash(user ID, e.g.
 * `alice`), the same value `hash("alice")` gives to a log line that must name that user.
 */
import { createHmac } from "node:crypto";
import { closeSync, fchmodSync, fsyncSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { loadOrCreateSecretFile } from "../store/keys.ts";
import type { Logger } from "../log.ts";
import type { AuditInput, AuditRecord, AuditSink } from "./types.ts";

/** Key file name in the data dir: 32 random bytes, mode 0600. */
export const AUDIT_KEY_FILE = "audit.key";
/** Log file name in the data dir (append-only JSON lines, mode 0600). */
export const AUDIT_LOG_FILE = "audit.log";
/** Prefix of every keyed hash. */
export const HASH_PREFIX = "hmac-sha256:";

/** Options of `createAuditSink`. */
export interface AuditSinkOptions {
  dataDir: string;
  /** `file`: append to `<dataDir>/audit.log`; `stdout`: one line per record on stdout. */
  mode: "file" | "stdout";
  /** Where write failures are reported (the record is dropped, the request goes on). */
  logger: Pick<Logger, "error" | "warn">;
  /** stdout writer, for tests; default `process.stdout`. */
  stdout?: { write(chunk: string): unknown };
}

/**
 * Load (or create on first start) the audit HMAC key `<dataDir>/audit.key`.
 * Same rules as the master key (`store/keys.ts`): regular file, mode 0600, race-free creation.
 * @throws ConfigError when the file is not exactly 32 bytes, is group/world-accessible, or is a symlink.
 */
export function loadAuditKey(dataDir: string): Uint8Array {
  return loadOrCreateSecretFile(join(dataDir, AUDIT_KEY_FILE), 32);
}

/**
 * Open the audit sink. Opening can fail (unreadable key, unwritable log) and throws, so a gateway
 * that cannot audit does not start; once open, `write` never throws.
 * @throws ConfigError for a bad key file; node `fs` errors when the data dir is not writable.
 * @example
 * const audit = createAuditSink({ dataDir: cfg.dataDir, mode: cfg.audit, logger });
 * audit.write({ event: "turn.start", project, session, run, principalSubject: "user:alice" });
 */
export function createAuditSink(opts: AuditSinkOptions): AuditSink {
  const key = loadAuditKey(opts.dataDir);
  const hash = (value: string) => HASH_PREFIX + createHmac("sha256", key).update(value, "utf8").digest("hex");
  const stdout = opts.stdout ?? process.stdout;
  let fd: number | null = null;
  if (opts.mode === "file") {
    fd = openSync(join(opts.dataDir, AUDIT_LOG_FILE), "a", 0o600);
    fchmodSync(fd, 0o600); // an older file may have been created with a looser mode
  }
  let closed = false;

  return {
    hash,
    write(input: AuditInput): void {
      try {
        if (closed) {
          opts.logger.warn({ event: input.event }, "audit record after close dropped");
          return;
        }
        // Pick the subjects out so the raw values can never be spread into the record.
        const { principalSubject, effectiveUserId, ...rest } = input;
        const record: AuditRecord = {
          time: new Date().toISOString(),
          ...rest,
          principal: hash(principalSubject),
          ...(effectiveUserId !== undefined ? { effectiveUser: hash(effectiveUserId) } : {}),
        };
        const line = JSON.stringify(record) + "\n";
        if (fd !== null) writeSync(fd, line);
        else stdout.write(line);
      } catch (err) {
        opts.logger.error({ err: errorSummary(err), event: input?.event }, "audit write failed; record dropped");
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (fd === null) return;
      try {
        fsyncSync(fd);
        closeSync(fd);
      } catch (err) {
        opts.logger.error({ err: errorSummary(err) }, "audit log close failed");
      }
      fd = null;
    },
  };
}

/** Error code and message only: a thrown object could carry the record. */
function errorSummary(err: unknown): { code?: string; message: string } {
  const e = err as NodeJS.ErrnoException;
  return { ...(e?.code ? { code: e.code } : {}), message: e?.message ?? String(err) };
}
