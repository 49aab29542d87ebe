/**
 * Reading AG-UI events from a local runner's stdout (DESIGN §2.1 step 7): bytes → complete
 * lines (`LineSplitter`) → one event per line (`parseEventLine`), validated with the AG-UI zod
 * schemas. Accepted line forms: a JSON object, or an SSE `data: <json>` line; SSE comments
 * (`:`), blank lines and `event:`/`id:`/`retry:` fields are skipped. An SSE event whose JSON
 * spans several `data:` lines is not supported: each line must carry a whole event.
 */
import type { BaseEvent } from "@ag-ui/core";
import { jsonTooDeep, MAX_JSON_DEPTH } from "../json.ts";
import { EventSchemas } from "@ag-ui/core/schemas";

/** Longest stdout line accepted, in bytes (1 MiB); longer lines are dropped with a warning. */
export const MAX_EVENT_LINE_BYTES = 1024 * 1024;

/** Event types that end a run. */
export const TERMINAL_EVENT_TYPES: ReadonlySet<string> = new Set(["RUN_FINISHED", "RUN_ERROR"]);

/** True iff `event` is RUN_FINISHED or RUN_ERROR. */
export function isTerminalEvent(event: { type: unknown }): boolean {
  return typeof event.type === "string" && TERMINAL_EVENT_TYPES.has(event.type);
}

/**
 * Splits a byte stream into lines (`\n`, optional `\r` before it), in bounded memory.
 * A line longer than `maxLineBytes` is cut: its first `maxLineBytes` bytes are delivered with
 * `truncated = true` once the line ends, the rest is discarded as it arrives. UTF-8 is decoded
 * per complete line, so a multi-byte character or a secret split across chunks is reassembled.
 */
export class LineSplitter {
  #max: number;
  #onLine: (line: string, truncated: boolean) => void;
  #parts: Buffer[] = [];
  #size = 0;
  #truncated = false;

  /**
   * @param maxLineBytes bytes kept per line (≥ 1).
   * @param onLine called once per line, without its terminator.
   */
  constructor(maxLineBytes: number, onLine: (line: string, truncated: boolean) => void) {
    this.#max = Math.max(1, maxLineBytes);
    this.#onLine = onLine;
  }

  /** Feed a chunk. */
  push(chunk: Uint8Array): void {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (;;) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        this.#keep(buf);
        return;
      }
      this.#keep(buf.subarray(0, nl));
      this.#flush();
      buf = buf.subarray(nl + 1);
    }
  }

  /** End of stream: deliver a final unterminated line, if any. */
  end(): void {
    if (this.#size > 0 || this.#truncated) this.#flush();
  }

  #keep(part: Buffer): void {
    const room = this.#max - this.#size;
    if (part.length > room) {
      this.#truncated = true;
      part = part.subarray(0, Math.max(0, room));
    }
    if (part.length === 0) return;
    // Copy: the caller may reuse the chunk's memory.
    this.#parts.push(Buffer.from(part));
    this.#size += part.length;
  }

  #flush(): void {
    let line = Buffer.concat(this.#parts, this.#size).toString("utf8");
    if (line.endsWith("\r")) line = line.slice(0, -1);
    const truncated = this.#truncated;
    this.#parts = [];
    this.#size = 0;
    this.#truncated = false;
    this.#onLine(line, truncated);
  }
}

/** Result of parsing one stdout line. */
export type ParsedLine =
  /** `event` is the schema-checked event; `value` the JSON exactly as parsed (members the schema drops, `__proto__` included). */
  | { kind: "event"; event: BaseEvent; value: unknown }
  | { kind: "skip" }
  | { kind: "invalid"; reason: string };

/**
 * Parse one line (without terminator) into a validated AG-UI event.
 * Returns `skip` for blank lines and SSE comments/fields, `invalid` (with a short reason that
 * may quote runner data: scrub before logging) for anything that is not a valid event.
 * Unknown extra properties are kept (the AG-UI schemas pass them through).
 */
export function parseEventLine(line: string): ParsedLine {
  let text = line.trim();
  if (text === "" || text.startsWith(":")) return { kind: "skip" };
  if (/^(event|id|retry):/.test(text)) return { kind: "skip" };
  if (text.startsWith("data:")) {
    text = text.slice(5).trim();
    if (text === "") return { kind: "skip" };
  }
  if (jsonTooDeep(text)) return { kind: "invalid", reason: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: "invalid", reason: "not JSON" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return { kind: "invalid", reason: "not a JSON object" };
  const parsed = EventSchemas.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join(".") + ": " : "";
    return { kind: "invalid", reason: `not an AG-UI event (${where}${issue?.message ?? "invalid"})` };
  }
  return { kind: "event", event: parsed.data as BaseEvent, value };
}
