/**
 * Request body parsing with a hard size bound. Bun's `maxRequestBodySize` refuses early only a
 * declared `Content-Length`; a chunked body declares none, so JSON bodies are measured here after
 * reading (Bun's own limit, set to twice ours in src/server.ts, bounds what can be read) and
 * refused with 413 `payload_too_large` past the configured limit. Nesting is bounded too
 * (`MAX_JSON_DEPTH`), checked on the text before parsing: a 1 MB body of 500 000 nested arrays
 * parses, but every recursive walk over it afterwards (scrubbing, the turn environment) overflows
 * the stack and stalls the event loop (found by a break-it review).
 */
import { badRequest, TurnkeyError } from "../errors.ts";
import { jsonTooDeep, MAX_JSON_DEPTH } from "../json.ts";

/**
 * Parse JSON text from a client, refusing excessive nesting first.
 * @throws TurnkeyError 400 `invalid_json` when it nests deeper than `MAX_JSON_DEPTH` or does not
 *   parse (the message never quotes the text).
 */
export function parseClientJson(text: string): unknown {
  if (jsonTooDeep(text)) throw badRequest(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`, "invalid_json");
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest("request body is not valid JSON", "invalid_json");
  }
}

/**
 * Read and parse a JSON request body of at most `maxBytes` bytes.
 * @returns the parsed value; `undefined` for an empty body (so optional bodies stay optional).
 * @throws TurnkeyError 413 `payload_too_large` past `maxBytes`, 400 `invalid_json` when it does
 *   not parse or nests deeper than `MAX_JSON_DEPTH` (the message never quotes the body).
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  // (Under Elysia `request.body` can be null for a chunked body while arrayBuffer() still works.)
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.byteLength > maxBytes) throw new TurnkeyError(413, "payload_too_large", `request body exceeds ${maxBytes} bytes`);
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "") return undefined;
  return parseClientJson(text);
}
