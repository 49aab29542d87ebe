/**
 * JSON limits shared by every place that parses JSON it did not write: request bodies and
 * WebSocket messages (src/http), runner output lines and SSE events (src/runner). Deeply nested
 * JSON parses fine but overflows the stack of every recursive walk afterwards (schema checks,
 * scrubbing), which a break-it review used both to fail turns and, from a runner's stdout, to crash
 * the gateway; so nesting is checked on the text, before parsing.
 */

/** Deepest accepted nesting of JSON arrays and objects in a request body, WebSocket message or runner event. */
export const MAX_JSON_DEPTH = 100;

/**
 * True when the JSON text nests arrays/objects deeper than `max` (brackets inside strings do not
 * count). Linear in the text, no allocation; malformed text is left to `JSON.parse`.
 */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
