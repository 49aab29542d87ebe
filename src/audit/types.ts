/**
 * Audit records (DESIGN §7 rule 5): one JSON line per credential decision and per turn start/end,
 * and per change of who may act (an interrupt, a collaborator shared or removed, a credential
 * stored or deleted): who did it and to whom, never the values.
 * `principal` is `hmac-sha256:<hex>` of the principal subject, keyed by a secret in the data dir,
 * after Vault's audit HMACs: records can be correlated without holding raw user IDs.
 */
export interface AuditRecord {
  /** ISO 8601. */
  time: string;
  event: "credential.access" | "credential.write" | "credential.delete" | "turn.start" | "turn.end" | "turn.interrupt" | "session.share" | "session.unshare";
  /** Absent for a user's own credential writes, which belong to no session. */
  project?: string;
  session?: string;
  /** The role granted by `session.share`. */
  role?: string;
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
