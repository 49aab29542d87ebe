/**
 * Who sent each user message of a shared session (issue 3 §4: "a client cannot set them for
 * someone else"). AG-UI clients send the whole conversation with every run, so a run's input
 * holds earlier user messages of *other* participants; stamping them all with the current sender
 * would rewrite history for every watcher, and believing the client's `metadata.senderId` would
 * let anyone speak for anyone (both found by a break-it review).
 *
 * The ledger remembers, per session, the sender the gateway stamped on each user message, keyed by
 * message ID *and* a hash of its role and content, so a message reused with new content is a new
 * message. Stamping a run's input:
 * - a message the ledger knows (same ID, same content) gets its recorded sender back;
 * - any other `user` message is the current sender's, and is recorded;
 * - any other message (assistant, tool, system…) loses client-supplied `senderId` /
 *   `senderDisplayName`.
 * Bounded: `maxPerSession` entries per session and `maxSessions` sessions, least recently used
 * dropped first. After a restart (or eviction) the ledger is seeded from the session's stored
 * events (the `MESSAGES_SNAPSHOT`s the gateway emitted), so history keeps its senders as far as
 * retention goes. That is sound only because a runner's own MESSAGES_SNAPSHOT never carries sender
 * fields: `withoutSenderFields` strips them before anyone sees or stores the event (a second
 * break-it review had a runner plant a snapshot naming the owner, which the seed then trusted).
 */
import { createHash } from "node:crypto";

/** The sender fields the gateway stamps into `message.metadata`. */
export interface SenderStamp {
  senderId: string;
  senderDisplayName: string;
}

/** The part of an AG-UI message the ledger reads. */
export interface LedgerMessage {
  id: string;
  role: string;
  content?: unknown;
  name?: unknown;
  metadata?: Record<string, unknown>;
}

/** Options of `SenderLedger`. */
export interface SenderLedgerOptions {
  /** Messages already stamped in a session (e.g. from its stored MESSAGES_SNAPSHOT events); read once per session. */
  seed?: (project: string, session: string) => Iterable<LedgerMessage>;
  /** Entries kept per session; default 2000. */
  maxPerSession?: number;
  /** Sessions kept; default 256 (with IDs and names at their 256-character limits, about 250 MB at worst). */
  maxSessions?: number;
}

/**
 * The ledger key of a message: its ID and a hash of everything it says (role, content, `name`, its
 * metadata other than the sender fields), so a known message re-sent with new content or extra
 * fields (a `name`, an `approvedBy`) is a new message of the current sender, not the original
 * author's (found by a break-it review). The order of messages in a run's input stays the
 * client's choice (AG-UI clients send the history).
 */
const contentKey = (m: LedgerMessage) => {
  const { senderId: _i, senderDisplayName: _n, ...meta } = m.metadata ?? {};
  const said = JSON.stringify([m.role, m.content ?? null, m.name ?? null, Object.keys(meta).length ? meta : null]);
  return `${m.id}\0${createHash("sha256").update(said).digest("base64url")}`;
};

/**
 * `messages` with `metadata.senderId` / `metadata.senderDisplayName` removed, or `undefined` when
 * none had them (the caller keeps the original event and its raw bytes).
 */
export function withoutSenderFields<M extends LedgerMessage>(messages: readonly M[]): M[] | undefined {
  if (!messages.some((m) => m.metadata && ("senderId" in m.metadata || "senderDisplayName" in m.metadata))) return undefined;
  return messages.map((m) => {
    if (!m.metadata) return m;
    const { senderId: _id, senderDisplayName: _name, ...rest } = m.metadata;
    return { ...m, metadata: rest };
  });
}

/**
 * A runner event with every place a client reads a message's sender from stripped of
 * `senderId`/`senderDisplayName`: the messages of a MESSAGES_SNAPSHOT, the event's own `metadata`
 * (@ag-ui/client merges a TEXT_MESSAGE_START's metadata into its message) and `input.messages` of
 * a RUN_STARTED. Only the gateway says who sent a message (found by two break-it reviews).
 * @returns the stripped copy, or `undefined` when the event claimed no sender (keep it and its raw bytes).
 */
export function withoutSenderClaims<E extends object>(event: E): E | undefined {
  const e = event as { messages?: LedgerMessage[]; metadata?: Record<string, unknown>; input?: { messages?: LedgerMessage[] } };
  const claims = (m: Record<string, unknown> | undefined) => !!m && typeof m === "object" && ("senderId" in m || "senderDisplayName" in m);
  const messages = Array.isArray(e.messages) ? withoutSenderFields(e.messages) : undefined;
  const inputMessages = Array.isArray(e.input?.messages) ? withoutSenderFields(e.input.messages) : undefined;
  const metadata = claims(e.metadata) ? (({ senderId: _i, senderDisplayName: _n, ...rest }) => rest)(e.metadata!) : undefined;
  if (!messages && !inputMessages && !metadata) return undefined;
  return {
    ...event,
    ...(messages ? { messages } : {}),
    ...(metadata ? { metadata } : {}),
    ...(inputMessages ? { input: { ...e.input, messages: inputMessages } } : {}),
  };
}

/** The per-session sender ledger (module doc). */
export class SenderLedger {
  #sessions = new Map<string, Map<string, SenderStamp>>();
  #opts: Required<Omit<SenderLedgerOptions, "seed">> & Pick<SenderLedgerOptions, "seed">;

  constructor(opts: SenderLedgerOptions = {}) {
    this.#opts = { maxPerSession: opts.maxPerSession ?? 2000, maxSessions: opts.maxSessions ?? 256, ...(opts.seed ? { seed: opts.seed } : {}) };
  }

  #session(project: string, session: string): Map<string, SenderStamp> {
    const key = `${project}/${session}`;
    let entries = this.#sessions.get(key);
    if (entries) {
      this.#sessions.delete(key); // most recently used last
    } else {
      entries = new Map();
      for (const m of this.#opts.seed?.(project, session) ?? []) {
        const id = m.metadata?.senderId;
        if (m.role === "user" && typeof id === "string") {
          const name = m.metadata?.senderDisplayName;
          this.#remember(entries, contentKey(m), { senderId: id, senderDisplayName: typeof name === "string" ? name : id });
        }
      }
    }
    this.#sessions.set(key, entries);
    if (this.#sessions.size > this.#opts.maxSessions) this.#sessions.delete(this.#sessions.keys().next().value!);
    return entries;
  }

  /** Drop everything known about a session (it was deleted and created again; `incarnationOf`). */
  forget(project: string, session: string): void {
    this.#sessions.delete(`${project}/${session}`);
  }

  #remember(entries: Map<string, SenderStamp>, key: string, stamp: SenderStamp): void {
    entries.delete(key);
    entries.set(key, stamp);
    if (entries.size > this.#opts.maxPerSession) entries.delete(entries.keys().next().value!);
  }

  /**
   * Stamp a run's messages (rules in the module doc) and record the new user messages.
   * @returns new message objects; the input is not modified.
   */
  stamp<M extends LedgerMessage>(project: string, session: string, messages: readonly M[], sender: SenderStamp): M[] {
    const entries = this.#session(project, session);
    return messages.map((m) => {
      const key = contentKey(m);
      const known = entries.get(key);
      const { senderId: _id, senderDisplayName: _name, ...rest } = m.metadata ?? {};
      if (known) {
        this.#remember(entries, key, known);
        return { ...m, metadata: { ...rest, ...known } };
      }
      if (m.role === "user") {
        const stamp = { senderId: sender.senderId, senderDisplayName: sender.senderDisplayName };
        this.#remember(entries, key, stamp);
        return { ...m, metadata: { ...rest, ...stamp } };
      }
      if (m.metadata === undefined || (_id === undefined && _name === undefined)) return m;
      return { ...m, metadata: rest };
    });
  }
}
