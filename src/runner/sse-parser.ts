/**
 * Incremental Server-Sent Events parser that keeps each event's exact bytes (issue 3: a remote
 * runner's stream is passed through byte for byte). Line and field rules follow WHATWG HTML
 * §9.2.6 "Interpreting an event stream": lines end with CRLF, LF or CR; a blank line dispatches
 * the event; `:` starts a comment; `data:` lines are joined with `\n`; one leading space after
 * the colon is removed; a leading UTF-8 BOM is ignored; an unterminated event at the end of the
 * stream is discarded.
 *
 * Memory is bounded: an event block longer than `maxBlockBytes` is skipped (its bytes are not
 * kept) up to its terminating blank line and reported through `onOversized`.
 */

/** One complete event block, as received. */
export interface SseBlock {
  /**
   * The block's bytes from its first line through its terminating blank line, comments, `id:`
   * and `event:` lines included. A private copy: the caller may keep it.
   */
  raw: Uint8Array;
  /** The `data:` lines joined with `\n`; null when the block has no `data` field (a comment-only block). */
  data: string | null;
  /** The `event:` field, when present. */
  event?: string;
}

/** Options of `SseBlockParser`. */
export interface SseParserOptions {
  /** Largest block kept, in bytes (its terminator included). */
  maxBlockBytes: number;
  /** Called synchronously for each complete block, in order. */
  onBlock: (block: SseBlock) => void;
  /** Called once per skipped oversized block with the number of bytes it had (≥ maxBlockBytes). */
  onOversized?: (bytes: number) => void;
}

const LF = 0x0a;
const CR = 0x0d;
const decoder = new TextDecoder("utf-8");

/**
 * Splits an SSE byte stream into event blocks.
 * @example
 * const p = new SseBlockParser({ maxBlockBytes: 1 << 20, onBlock: (b) => console.log(b.data) });
 * p.push(new TextEncoder().encode("data: {\"a\":1}\r\n\r\n"));
 */
export class SseBlockParser {
  #max: number;
  #onBlock: (block: SseBlock) => void;
  #onOversized: (bytes: number) => void;
  /** Bytes of the current block (only while it is within the limit). */
  #buf: Uint8Array;
  #len = 0;
  /** Total bytes seen for the current block, kept or not. */
  #blockBytes = 0;
  #oversized = false;
  /** Where the current line starts in `#buf`. */
  #lineStart = 0;
  /** Byte count of the current line's content (without terminator), counted even when oversized. */
  #lineLen = 0;
  #data: string[] = [];
  #event: string | undefined;
  /** The previous chunk ended in CR: a leading LF completes that CRLF. */
  #afterCr = false;
  /** ...and that CR ended a block that was already dispatched, so the LF belongs to nobody. */
  #afterCrDispatched = false;
  #bomChecked = false;

  constructor(opts: SseParserOptions) {
    this.#max = Math.max(2, opts.maxBlockBytes);
    this.#onBlock = opts.onBlock;
    this.#onOversized = opts.onOversized ?? (() => {});
    this.#buf = new Uint8Array(Math.min(this.#max, 4096));
  }

  /** Bytes of an incomplete block currently held. */
  get pendingBytes(): number {
    return this.#blockBytes;
  }

  /** Feed a chunk; complete blocks are delivered before this returns. */
  push(chunk: Uint8Array): void {
    let i = 0;
    if (!this.#bomChecked && chunk.length > 0) {
      // The BOM may in theory be split across chunks; runners write it (if ever) in one piece.
      this.#bomChecked = true;
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3;
    }
    if (this.#afterCr && i < chunk.length) {
      this.#afterCr = false;
      if (chunk[i] === LF) {
        // The LF of a CRLF split across chunks. If the CR ended a block already dispatched, the
        // LF is dropped (the client sees a CR line ending, which means the same); otherwise it
        // belongs to the current block.
        if (!this.#afterCrDispatched) this.#append(chunk, i, i + 1);
        i++;
        this.#lineStart = this.#len;
      }
      this.#afterCrDispatched = false;
    }
    let segStart = i;
    for (; i < chunk.length; i++) {
      const b = chunk[i];
      if (b !== LF && b !== CR) {
        this.#lineLen++;
        continue;
      }
      let end = i + 1;
      let crAtEnd = false;
      if (b === CR) {
        if (end < chunk.length) {
          if (chunk[end] === LF) end++;
        } else crAtEnd = true;
      }
      const termLen = end - i;
      this.#append(chunk, segStart, end);
      segStart = end;
      const dispatched = this.#endLine(termLen);
      if (crAtEnd) {
        this.#afterCr = true;
        this.#afterCrDispatched = dispatched;
      }
      i = end - 1;
    }
    this.#append(chunk, segStart, chunk.length);
  }

  /**
   * End of stream. An unterminated block is discarded (WHATWG: "If the file ends in the middle
   * of an event, … the pending data must be discarded").
   * @returns the number of bytes discarded.
   */
  end(): number {
    const discarded = this.#blockBytes;
    this.#reset();
    return discarded;
  }

  #append(chunk: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    this.#blockBytes += n;
    if (this.#oversized) return;
    if (this.#len + n > this.#max) {
      this.#oversized = true;
      return;
    }
    if (this.#len + n > this.#buf.length) {
      const grown = new Uint8Array(Math.min(this.#max, Math.max(this.#buf.length * 2, this.#len + n)));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(chunk.subarray(from, to), this.#len);
    this.#len += n;
  }

  /** A line ended (its terminator already appended). @returns true if a block was dispatched. */
  #endLine(termLen: number): boolean {
    const blank = this.#lineLen === 0;
    if (!blank && !this.#oversized) this.#field(decoder.decode(this.#buf.subarray(this.#lineStart, this.#len - termLen)));
    this.#lineLen = 0;
    this.#lineStart = this.#len;
    if (!blank) return false;
    if (this.#blockBytes === termLen) {
      // A blank line with nothing before it: nothing to dispatch (WHATWG: empty data buffer), and
      // its bytes are dropped (a split CRLF's LF with it).
      this.#reset();
      return true;
    }
    if (this.#oversized) {
      this.#onOversized(this.#blockBytes);
    } else {
      const block: SseBlock = { raw: this.#buf.slice(0, this.#len), data: this.#data.length ? this.#data.join("\n") : null };
      if (this.#event !== undefined) block.event = this.#event;
      this.#reset();
      this.#onBlock(block);
      return true;
    }
    this.#reset();
    return true;
  }

  #field(line: string): void {
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") this.#data.push(value);
    else if (name === "event") this.#event = value;
  }

  #reset(): void {
    this.#len = 0;
    this.#blockBytes = 0;
    this.#oversized = false;
    this.#lineStart = 0;
    this.#lineLen = 0;
    this.#data = [];
    this.#event = undefined;
    if (this.#buf.length > 64 * 1024) this.#buf = new Uint8Array(4096);
  }
}
