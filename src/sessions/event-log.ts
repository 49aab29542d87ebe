/**
 * A bounded per-session log of AG-UI events (issue 3 §4), so a participant who opens the live
 * view late first sees what already happened. One JSON-lines file per session under
 * `<dataDir>/events/<project>/<session>.jsonl` (0600), each line `{seq, runId, time, event}`.
 *
 * Retention has two bounds, both applied: at most `maxEvents` events and at most `maxBytes`
 * bytes of lines (an event's line is its JSON record plus `\n`; AG-UI events can be ~1 MiB each,
 * so a count alone does not bound the file). The stored events are always the newest ones that
 * fit both bounds; a single event larger than `maxBytes` is delivered live but never replayed.
 * - Appends are O(1). The file is compacted (rewritten with the newest events within both bounds,
 *   atomically via a temp file and rename) once it holds `2 × maxEvents` lines or `2 × maxBytes`
 *   bytes, so it stays under about twice the bounds plus one event.
 * - Replay reads only the file's last `maxBytes + 1` bytes, never the whole file; compaction the
 *   same. Opening a session's log the first time in a process reads at most `2 × maxBytes + 1`
 *   bytes (an older, larger file is compacted first).
 * - `maxEvents = 0` or `maxBytes = 0` disables storage; sequence numbers still advance.
 * Sequence numbers continue across restarts from the newest stored event; when nothing is stored
 * (storage disabled, or every stored event was larger than the bounds) they restart at 1, which
 * is why the events route treats a `Last-Event-ID` beyond the current number as 0.
 *
 * Only scrubbed events reach the log (they come from the event bus, after the executor's
 * scrubber), so it never holds a secret injected into a turn.
 */
import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BaseEvent } from "@ag-ui/core";

/** Default byte bound of a session's stored events (4 MiB); see `TURNKEY_EVENTS_RETENTION_BYTES`. */
export const DEFAULT_EVENTS_RETENTION_BYTES = 4 * 1024 * 1024;

/** One stored event. `seq` increases by one per event within a session; `time` is epoch ms. */
export interface LoggedEvent {
  seq: number;
  runId: string;
  time: number;
  event: BaseEvent;
}

interface SessionState {
  lastSeq: number;
  /** Lines and bytes in the file now (bytes = file size as written by this process). */
  lines: number;
  bytes: number;
  /** The session incarnation the file belongs to, once `bindIncarnation` checked it. */
  incarnation?: string;
}

/** Complete lines of the newest `windowBytes` bytes of a file (a partial first line is dropped). */
function readTailLines(file: string, windowBytes: number): { lines: string[]; size: number; whole: boolean; endsWithNewline: boolean } {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, windowBytes);
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, size - length + got);
      if (n === 0) break;
      got += n;
    }
    const whole = length === size;
    const endsWithNewline = got > 0 && buf[got - 1] === 0x0a;
    let text = buf.subarray(0, got).toString("utf8");
    // Not from the start: the first line is cut unless the window begins right after a newline,
    // and the window is one byte longer than the bound so that case keeps exactly `bound` bytes.
    if (!whole) text = text.slice(text.indexOf("\n") + 1);
    return { lines: text.split("\n").filter(Boolean), size, whole, endsWithNewline };
  } finally {
    closeSync(fd);
  }
}

function parseLine(line: string): LoggedEvent | undefined {
  try {
    const r = JSON.parse(line) as LoggedEvent;
    return typeof r?.seq === "number" ? r : undefined;
  } catch {
    return undefined; // a torn last line after a crash
  }
}

/** The newest lines within `maxEvents` lines and `maxBytes` bytes (each line counted with its `\n`). */
function newestWithin(lines: string[], maxEvents: number, maxBytes: number): string[] {
  let bytes = 0;
  let i = lines.length;
  while (i > 0 && lines.length - i < maxEvents) {
    const n = Buffer.byteLength(lines[i - 1]!) + 1;
    if (bytes + n > maxBytes) break;
    bytes += n;
    i--;
  }
  return lines.slice(i);
}

/** The bounded per-session event log (module doc); I/O errors propagate to the bus. */
export class SessionEventLog {
  #root: string;
  #maxEvents: number;
  #maxBytes: number;
  #state = new Map<string, SessionState>();

  /**
   * @param dataDir the gateway's data directory; files go under `events/`.
   * @param maxEvents events kept per session (`TURNKEY_EVENTS_RETENTION`; 0 = keep none).
   * @param maxBytes bytes of stored lines kept per session (`TURNKEY_EVENTS_RETENTION_BYTES`;
   *   0 = keep none); default `DEFAULT_EVENTS_RETENTION_BYTES` (4 MiB).
   */
  constructor(dataDir: string, maxEvents: number, maxBytes: number = DEFAULT_EVENTS_RETENTION_BYTES) {
    this.#root = join(dataDir, "events");
    this.#maxEvents = maxEvents;
    this.#maxBytes = maxBytes;
  }

  get #enabled(): boolean {
    return this.#maxEvents > 0 && this.#maxBytes > 0;
  }

  /** Project and session are DNS-1123 labels (validated at the edge), so they are safe path parts. */
  #file(project: string, session: string): string {
    return join(this.#root, project, `${session}.jsonl`);
  }

  #load(project: string, session: string): SessionState {
    const key = `${project}/${session}`;
    let st = this.#state.get(key);
    if (st) return st;
    st = { lastSeq: 0, lines: 0, bytes: 0 };
    const file = this.#file(project, session);
    if (existsSync(file)) {
      const tail = readTailLines(file, 2 * this.#maxBytes + 1);
      for (let i = tail.lines.length - 1; i >= 0 && st.lastSeq === 0; i--) st.lastSeq = parseLine(tail.lines[i]!)?.seq ?? 0;
      st.lines = tail.whole ? tail.lines.length : Number.POSITIVE_INFINITY;
      st.bytes = tail.size;
      // A line torn by a crash must not swallow the next append.
      if (tail.size > 0 && !tail.endsWithNewline && this.#enabled) {
        appendFileSync(file, "\n");
        st.bytes++;
      }
      if (this.#enabled && this.#overBounds(st)) this.#compact(project, session, st);
    }
    this.#state.set(key, st);
    return st;
  }

  #overBounds(st: SessionState): boolean {
    return st.lines >= 2 * this.#maxEvents || st.bytes >= 2 * this.#maxBytes;
  }

  /**
   * Tie the session's stored events to one incarnation of the session (`incarnationOf`): when the
   * stored ID differs, or none is stored beside a log, the log is deleted first (a session deleted
   * and created again under the same name must not replay the old one's events; found by a second
   * break-it review). The ID is kept in `<session>.id` (0600) next to the log.
   * @returns true when an old incarnation's events were discarded. I/O errors propagate.
   */
  bindIncarnation(project: string, session: string, id: string): boolean {
    const key = `${project}/${session}`;
    const st = this.#state.get(key);
    if (st?.incarnation === id) return false;
    const file = this.#file(project, session);
    const idFile = file.replace(/\.jsonl$/, ".id");
    let stored: string | undefined;
    try {
      stored = readFileSync(idFile, "utf8");
    } catch {
      stored = undefined;
    }
    let discarded = false;
    if (stored !== id) {
      discarded = existsSync(file);
      rmSync(file, { force: true });
      this.#state.delete(key);
      mkdirSync(join(this.#root, project), { recursive: true, mode: 0o700 });
      writeFileSync(idFile, id, { mode: 0o600 });
    }
    this.#load(project, session).incarnation = id;
    return discarded;
  }

  /** Sequence number of the session's newest event (0 = none yet). I/O errors propagate. */
  lastSeq(project: string, session: string): number {
    return this.#load(project, session).lastSeq;
  }

  /**
   * Append an event; returns its sequence number. With storage disabled nothing is written but
   * sequence numbers still advance (live watchers use them for `id:`). I/O errors propagate.
   */
  append(project: string, session: string, runId: string, event: BaseEvent): number {
    const st = this.#load(project, session);
    const record: LoggedEvent = { seq: st.lastSeq + 1, runId, time: Date.now(), event };
    st.lastSeq = record.seq;
    if (!this.#enabled) return record.seq;
    const line = JSON.stringify(record) + "\n";
    mkdirSync(join(this.#root, project), { recursive: true, mode: 0o700 });
    appendFileSync(this.#file(project, session), line, { mode: 0o600 });
    st.lines++;
    st.bytes += Buffer.byteLength(line);
    if (this.#overBounds(st)) this.#compact(project, session, st);
    return record.seq;
  }

  /** Rewrite the file with the newest lines within both bounds, reading only its tail. */
  #compact(project: string, session: string, st: SessionState): void {
    const file = this.#file(project, session);
    const lines = readTailLines(file, this.#maxBytes + 1).lines.filter((l) => parseLine(l) !== undefined);
    const keep = newestWithin(lines, this.#maxEvents, this.#maxBytes);
    const text = keep.map((l) => l + "\n").join("");
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, file);
    st.lines = keep.length;
    st.bytes = Buffer.byteLength(text);
  }

  /**
   * Stored events of a session with `seq > afterSeq`, oldest first: at most the newest
   * `maxEvents`, within `maxBytes` bytes of stored lines. Reads at most `maxBytes + 1` bytes from
   * the end of the file, and nothing when `afterSeq` is already the newest. I/O errors propagate.
   */
  replay(project: string, session: string, afterSeq = 0): LoggedEvent[] {
    if (!this.#enabled) return [];
    const file = this.#file(project, session);
    if (!existsSync(file) || afterSeq >= this.#load(project, session).lastSeq) return [];
    const lines = readTailLines(file, this.#maxBytes + 1).lines;
    const out: LoggedEvent[] = [];
    for (const line of newestWithin(lines, this.#maxEvents, this.#maxBytes)) {
      const r = parseLine(line);
      if (r && r.seq > afterSeq) out.push(r);
    }
    return out;
  }
}
