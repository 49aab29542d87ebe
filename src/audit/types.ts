/**
 * Audit records (DESIGN §7 rule 5): one JSON line per credential decision and per turn start/end.
 * `principal` is `hmac-sha256:<hex>` of the principal subject, keyed by a secret in the data dir,
 * after Vault's audit HMACs: records can be correlated without holding raw user IDs.
 */
export interface AuditRecord {
  /** ISO 8601. */
  time: string;
  event: "credential.access" | "turn.start" | "turn.end";
  project: string;
  session: string;
  run?: string;
  provider?: string;
  decision?: "allow" | "deny";
  reason?: string;
  /** Keyed hash of the calling principal. */
  principal: string;
  /** Keyed hash of the effective user, when there is one. */
  effectiveUser?: string;
  outcome?: string;
  durationMs?: number;
}

/** Raw audit input: subjects are hashed by the sink, never written raw. */
export type AuditInput = Omit<AuditRecord, "time" | "principal" | "effectiveUser"> & {
  principalSubject: string;
  effectiveUserId?: string;
};

/** Where audit records go (src/audit/audit.ts); hashes subjects with its key. */
export interface AuditSink {
  /** Write one record. Never throws (a failing sink logs and drops). */
  write(input: AuditInput): void;
  /** `hmac-sha256:<hex>` of a value, for logs that must name a user. */
  hash(value: string): string;
  close(): Promise<void>;
}
