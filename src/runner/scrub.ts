/**
 * Secret scrubbing for everything a runner sends back (DESIGN §2.1 step 7, §7 rule 3): events,
 * stderr lines, log messages. Every secret value injected for the turn is replaced by
 * `[REDACTED]`, also in the encoded forms a runner is likely to print by accident: JSON-escaped
 * (a secret containing `"` or `\` inside a JSON string), URL-encoded, and base64/base64url of
 * the secret alone or inside a longer value (at any byte alignment, `base64Cores`). A runner that
 * means to leak a secret (splitting, reversing, another encoding) is not stopped by this.
 *
 * Scrubbing works on whole strings. Callers must hand it complete lines or parsed events, never
 * raw stdout chunks: a secret split across two chunks would otherwise slip through
 * (`LineSplitter` in events.ts does the reassembly).
 */

/** What a secret is replaced with. */
export const REDACTED = "[REDACTED]";

/**
 * Secrets shorter than this (in UTF-16 code units) are not scrubbed: replacing every `a` or
 * `12` in the stream would wreck the output and, worse, tell the reader exactly which short
 * string is the secret. Real tokens and API keys are far longer; a short password stays a
 * known limitation.
 */
export const MIN_SECRET_LENGTH = 6;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The base64 characters that encode `bytes` whatever comes before or after them, for each of the
 * three alignments (0, 1 or 2 bytes before). base64 works in 3-byte groups, so a secret inside a
 * longer value (HTTP Basic `oauth2:<token>`, `x-access-token:<token>`) encodes differently per
 * alignment; only the characters made of secret bits alone are fixed (found by a break-it review:
 * GitLab's `oauth2:` prefix of 7 bytes leaked the token).
 */
export function base64Cores(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const padded = Buffer.concat([Buffer.alloc(k), bytes]).toString("base64");
    out.push(padded.slice(Math.ceil((4 * k) / 3), Math.floor(((k + bytes.length) * 8) / 6)));
  }
  return out;
}

/** The forms of one secret to look for, raw first. */
function forms(secret: string): string[] {
  const out = [secret];
  const json = JSON.stringify(secret).slice(1, -1);
  out.push(json);
  out.push(encodeURIComponent(secret));
  const bytes = Buffer.from(secret, "utf8");
  out.push(bytes.toString("base64").replace(/=+$/, ""), bytes.toString("base64url"));
  for (const core of base64Cores(bytes)) out.push(core, core.replaceAll("+", "-").replaceAll("/", "_"));
  return out;
}

/**
 * Replaces the given secret values in strings and, recursively, in plain objects and arrays.
 * Immutable after construction; cheap to call per line (one precompiled regular expression).
 * @example
 * const s = new SecretScrubber(["ghp_abcdef123456"]);
 * s.scrub("token=ghp_abcdef123456"); // "token=[REDACTED]"
 */
export class SecretScrubber {
  #pattern: RegExp | null;
  #count: number;
  #longest: number;

  /** @param secrets values to hide; empty, duplicate and too-short (`MIN_SECRET_LENGTH`) ones are skipped. */
  constructor(secrets: Iterable<string | undefined | null>) {
    const all = new Set<string>();
    let count = 0;
    for (const s of new Set(secrets)) {
      if (typeof s !== "string" || s.length < MIN_SECRET_LENGTH) continue;
      count++;
      for (const f of forms(s)) if (f.length >= MIN_SECRET_LENGTH) all.add(f);
    }
    this.#count = count;
    this.#longest = Math.max(0, ...[...all].map((f) => f.length));
    // Longest first, so a secret that contains another is replaced whole.
    const alternatives = [...all].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.#pattern = alternatives.length ? new RegExp(alternatives.join("|"), "g") : null;
  }

  /** Number of distinct secrets being scrubbed (after dropping short ones). */
  get size(): number {
    return this.#count;
  }

  /** `text` with every secret form replaced by `[REDACTED]`. */
  scrub(text: string): string {
    if (!this.#pattern || text.length < MIN_SECRET_LENGTH) return text;
    return text.replace(this.#pattern, REDACTED);
  }

  /**
   * Scrub `text` that was cut from a longer string (a truncated line): besides whole secrets,
   * the last `longest secret form - 1` characters are dropped, since they could be the start of
   * a secret that the cut split in two. Appends `…` when something was cut.
   */
  scrubTruncated(text: string): string {
    const out = this.scrub(text);
    if (!this.#pattern) return out + "…";
    return out.slice(0, Math.max(0, out.length - (this.#longest - 1))) + "…";
  }

  /**
   * A copy of `value` with every string (object keys included) scrubbed; plain objects and
   * arrays are walked recursively, other values returned as they are. Parsed JSON has no
   * cycles; a repeated reference is walked each time it occurs, depth is bounded by the input.
   */
  scrubValue<T>(value: T): T {
    return this.#walk(value) as T;
  }

  #walk(v: unknown): unknown {
    if (typeof v === "string") return this.scrub(v);
    if (!this.#pattern || v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map((x) => this.#walk(x));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[this.scrub(k)] = this.#walk(x);
    return out;
  }
}
