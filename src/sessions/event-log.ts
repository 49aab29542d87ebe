/**
 * A bounded per-session log of AG-UI events (issue 3 §4), so a participant who opens the live
 * view late first sees what already happened. One JSON-lines file per session under
 * `<dataDir>/events/<project>/<session>.jsonl` (0600), each line `{seq, runId, time, event}`.
 *
 * Retention: the newest `retention` events are kept. The file is compacted (rewritten with the
 * newest `retention` lines, atomically) once it holds twice that, so appends stay O(1) and the
 * file stays under ~2 × retention lines. `retention = 0` disables the log.
 *
 * Only scrubbed events reach the log (they come from the event bus, after the executor's
 * scrubber), so it never holds a secret injected into a turn.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BaseEvent } from "@ag-ui/core";

/** One stored event. `seq` increases by one per event within a session; `time` is epoch ms. */
export interface LoggedEvent {
  seq: number;
  runId: string;
  time: number;
  event: BaseEvent;
}

interface SessionState {
  lastSeq: number;
  lines: number;
}

export class SessionEventLog {
  #root: string;
  #retention: number;
  #state = new Map<string, SessionState>();

  /**
   * @param dataDir the gateway's data directory; files go under `events/`.
   * @param retention events kept per session (0 = keep none).
   */
  constructor(dataDir: string, retention: number) {
    this.#root = join(dataDir, "events");
    this.#retention = retention;
  }

  /** Project and session are DNS-1123 labels (validated at the edge), so they are safe path parts. */
  #file(project: string, session: string): string {
    return join(this.#root, project, `${session}.jsonl`);
  }

  #load(project: string, session: string): SessionState {
    const key = `${project}/${session}`;
    let st = this.#state.get(key);
    if (!st) {
      const records = this.#read(project, session);
      st = { lastSeq: records.at(-1)?.seq ?? 0, lines: records.length };
      this.#state.set(key, st);
    }
    return st;
  }

  #read(project: string, session: string): LoggedEvent[] {
    const file = this.#file(project, session);
    if (!existsSync(file)) return [];
    const out: LoggedEvent[] = [];
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as LoggedEvent);
      } catch {
        /* a torn last line after a crash: skip it */
      }
    }
    return out;
  }

  /**
   * Append an event; returns its sequence number. With retention 0 nothing is written but
   * sequence numbers still advance (live watchers use them for `id:`). I/O errors propagate.
   */
  append(project: string, session: string, runId: string, event: BaseEvent): number {
    const st = this.#load(project, session);
    const record: LoggedEvent = { seq: st.lastSeq + 1, runId, time: Date.now(), event };
    st.lastSeq = record.seq;
    if (this.#retention === 0) return record.seq;
    const file = this.#file(project, session);
    mkdirSync(join(this.#root, project), { recursive: true, mode: 0o700 });
    appendFileSync(file, JSON.stringify(record) + "\n", { mode: 0o600 });
    st.lines++;
    if (st.lines >= this.#retention * 2) this.#compact(project, session, st);
    return record.seq;
  }

  #compact(project: string, session: string, st: SessionState): void {
    const keep = this.#read(project, session).slice(-this.#retention);
    const file = this.#file(project, session);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, keep.map((r) => JSON.stringify(r) + "\n").join(""), { mode: 0o600 });
    renameSync(tmp, file);
    st.lines = keep.length;
  }

  /** Stored events of a session with `seq > afterSeq`, oldest first (at most `retention`). */
  replay(project: string, session: string, afterSeq = 0): LoggedEvent[] {
    if (this.#retention === 0) return [];
    return this.#read(project, session)
      .filter((r) => r.seq > afterSeq)
      .slice(-this.#retention);
  }
}
