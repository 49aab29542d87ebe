/**
 * `GET /api/projects/:project/agentic-sessions/:session/agui/ws` (issue 3 §6), on Elysia's
 * built-in `.ws()`:
 * - Authenticated at upgrade: `Authorization: Bearer <token>`, or for browsers (which cannot set
 *   headers on a WebSocket) the subprotocol `bearer.<token>`. The caller must be able to watch
 *   the session (owner, edit, view). Failure closes with 1008 (policy violation, RFC 6455 §7.4.1).
 * - Subprotocols (RFC 6455 §4.2.2, `selectSubprotocol`): a client should offer `turnkey.v1`
 *   beside its bearer protocol (`new WebSocket(url, ["turnkey.v1", "bearer.<token>"])`); the
 *   server then selects `turnkey.v1`, so the token never appears in the response headers (nor in
 *   proxy logs of them). Only when `bearer.<token>` is the sole protocol offered is it echoed back,
 *   because a browser fails a handshake whose selected protocol it did not offer.
 * - Admission: the socket counts as a watcher against `TURNKEY_MAX_WATCHERS` and
 *   `TURNKEY_MAX_WATCHERS_PER_USER` together with SSE events streams (src/http/watch-guard.ts
 *   `WatcherSlots`); beyond either it closes with 1013 "try again later" (IANA WebSocket close
 *   code registry). The slot is released when the socket closes, for whatever reason.
 * - Message size: a message longer than `TURNKEY_MAX_BODY_BYTES` (its size as received, in
 *   bytes, before parsing) is refused with an error frame `code: "payload_too_large"` and the
 *   socket stays open. Bun's `maxPayloadLength` (set by src/server.ts to twice that) backs this up
 *   by closing with 1009 (message too big) without buffering more.
 * - Client → server: `{"type":"run","input":RunAgentInput}`. Authorization is checked again for
 *   every run message, so a collaborator removed mid-connection cannot start another turn
 *   (removed entirely → 1008; downgraded to view → an error frame).
 * - Server → client: every AG-UI event of the session as a JSON text frame (this connection's
 *   turns and everyone else's), and `{"type":"error","error","code"}` frames for refused messages.
 * - The watcher is re-checked (src/http/watch-guard.ts) on membership changes and every
 *   `TURNKEY_WATCH_RECHECK_MS`: once its token no longer authenticates it or it lost its role,
 *   the socket closes with 1008.
 * - A client that reads slowly: a turn started on this socket stops reading its runner while more
 *   than 1 MiB waits in the socket's send buffer (src/http/flow.ts), and is ended with
 *   `client_too_slow` when the client takes nothing for `TURNKEY_CLIENT_STALL_MS`.
 * - A client that does not read: after each frame the socket's buffered amount is checked; above
 *   `WS_MAX_BUFFERED_BYTES` (8 MiB: other participants' turns do not wait for this socket) the
 *   socket closes with 1008 "client too slow" and no more frames are queued for it (Bun itself
 *   would silently drop frames past its 16 MiB limit).
 * A turn started on a connection is aborted (with full teardown) when the client closes the
 * connection or it is cut for reading too slowly. When the connection is closed because its user
 * may no longer watch, the turns it started keep running to their normal end: they were
 * authorised when they started, other participants may be watching them, and the owner can end
 * one with `POST …/agui/interrupt`.
 */
import { Elysia } from "elysia";
import { TurnkeyError } from "../../errors.ts";
import { subjectOf, type Principal } from "../../identity/principal.ts";
import { FORWARDED_IDENTITY_HEADERS } from "../../identity/forwarded.ts";
import { mayPerform } from "../../rbac/session-access.ts";
import type { AppDeps } from "../context.ts";
import { RunAgentInputBody, SessionParams } from "../schemas.ts";
import { Value } from "@sinclair/typebox/value";
import { jsonTooDeep, MAX_JSON_DEPTH } from "../../json.ts";
import { unavailableLogger } from "../errors.ts";
import { CLIENT_TOO_SLOW, DEFAULT_SSE_MAX_QUEUED_BYTES } from "../sse.ts";
import { TurnAbort } from "../../runner/types.ts";
import { guardWatcher, watcherSlotsFor, type WatchGuard } from "../watch-guard.ts";
import { streamFlow } from "../flow.ts";
import { completeRunInput } from "./agui.ts";

const BEARER_PROTOCOL = /^bearer\.(.+)$/;

/** Per-socket cap on bytes Bun holds for a client that does not read (8 MiB, as an SSE channel's queue). */
export const WS_MAX_BUFFERED_BYTES = DEFAULT_SSE_MAX_QUEUED_BYTES;

/**
 * Close codes a server may send (RFC 6455 §7.4.1): 1005, 1006 and 1015 are reserved for
 * reporting and must never appear in a Close frame; anything outside 1000-4999 is invalid.
 * Such codes become 1011 (internal error).
 */
export function safeCloseCode(code: number): number {
  if (code === 1005 || code === 1006 || code === 1015 || code < 1000 || code > 4999 || (code >= 1016 && code < 3000)) return 1011;
  return code;
}

/** The bearer token from the header, else from a `bearer.<token>` subprotocol. */
export function wsBearer(headers: Headers): { authorization?: string; protocol?: string } {
  const auth = headers.get("authorization");
  if (auth) return { authorization: auth };
  for (const p of (headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim())) {
    const m = BEARER_PROTOCOL.exec(p);
    if (m) return { authorization: `Bearer ${m[1]}`, protocol: p };
  }
  return {};
}

/** The subprotocol a client offers so the server need not echo its bearer token (see the module doc). */
export const TURNKEY_PROTOCOL = "turnkey.v1";

/**
 * The subprotocol to select (RFC 6455 §4.2.2) from the offered `Sec-WebSocket-Protocol` value:
 * `turnkey.v1` when offered; else a `bearer.<token>` offered alone (browsers need an offered one
 * back); else none.
 * @example selectSubprotocol("turnkey.v1, bearer.abc") // → "turnkey.v1"
 * @example selectSubprotocol("bearer.abc") // → "bearer.abc";  selectSubprotocol("x, bearer.abc") // → undefined
 */
export function selectSubprotocol(offered: string | null): string | undefined {
  const list = (offered ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (list.includes(TURNKEY_PROTOCOL)) return TURNKEY_PROTOCOL;
  if (list.length === 1 && BEARER_PROTOCOL.test(list[0]!)) return list[0];
  return undefined;
}

/** Size of a WebSocket message as received: UTF-8 bytes of a text frame, length of a binary one. */
export function messageBytes(message: string | ArrayBufferView | ArrayBuffer): number {
  return typeof message === "string" ? Buffer.byteLength(message, "utf8") : message.byteLength;
}

/**
 * Put a size and nesting check in front of Elysia's per-connection message handler (Bun's
 * `ws.data.message`, Elysia 1.4), so an oversized or too deeply nested message is refused before
 * Elysia parses it as JSON (`MAX_JSON_DEPTH`, as for request bodies).
 * @returns false when the handler is not where Elysia 1.4 keeps it (the caller must fail closed).
 */
function guardMessage(raw: object, maxBytes: number, refuse: (error: TurnkeyError) => void): boolean {
  const data = (raw as { data?: { message?: unknown } }).data;
  const inner = data?.message;
  if (!data || typeof inner !== "function") return false;
  data.message = (sock: unknown, message: string | ArrayBufferView) => {
    if (messageBytes(message) > maxBytes) return refuse(new TurnkeyError(413, "payload_too_large", `message exceeds ${maxBytes} bytes`));
    const text = typeof message === "string" ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString("utf8");
    if (jsonTooDeep(text)) return refuse(new TurnkeyError(400, "invalid_json", `JSON nested deeper than ${MAX_JSON_DEPTH} levels`));
    return inner.call(data, sock, message);
  };
  return true;
}

interface Conn {
  /** Set when the socket was closed for not reading (its turns end with `client_too_slow`). */
  tooSlow?: boolean;
  unsubscribe: () => void;
  /** Releases this socket's watcher slot (idempotent). */
  release: () => void;
  guard?: WatchGuard;
  runs: Set<AbortController>;
  /** Resolves true once the connection is authenticated and subscribed, false if refused. */
  ready: Promise<boolean>;
}

/** JSON text per event object, made once and shared by every socket watching the session. */
const texts = new WeakMap<object, string>();
function jsonOf(event: object): string {
  let text = texts.get(event);
  if (text === undefined) texts.set(event, (text = JSON.stringify(event)));
  return text;
}

/** Close with 1008 (policy violation) and report the connection as refused. */
function fail1008(ws: { close(code: number, reason: string): void }, reason: string): false {
  ws.close(1008, reason);
  return false;
}

/** Minimal socket shape for `sendBounded`: Elysia's wrapper, whose `raw` is Bun's ServerWebSocket. */
export interface BoundedSocket {
  send(data: string): number;
  close(code: number, reason: string): void;
  /** Bun's ServerWebSocket; Elysia's bundled types predate its `getBufferedAmount()` (Bun ≥ 1.1). */
  raw: object;
}

/** The peer's IP address (Bun's `ServerWebSocket.remoteAddress`), for trusted-proxy checks. */
function peer(raw: object): string | undefined {
  const a = (raw as { remoteAddress?: unknown }).remoteAddress;
  return typeof a === "string" && a !== "" ? a : undefined;
}

/** Bytes Bun holds for the socket, not yet written to the kernel (0 if Bun cannot say). */
function bufferedAmount(raw: object): number {
  const f = (raw as { getBufferedAmount?: () => number }).getBufferedAmount;
  return typeof f === "function" ? f.call(raw) : 0;
}

/**
 * Send one frame unless the client has stopped reading: when Bun reports the frame dropped
 * (status 0) or more than `maxBufferedBytes` wait in the socket's buffer, close with 1008
 * "client too slow" instead. @returns false when the socket was closed.
 */
export function sendBounded(ws: BoundedSocket, data: string, maxBufferedBytes = WS_MAX_BUFFERED_BYTES): boolean {
  const status = ws.send(data);
  if (status !== 0 && bufferedAmount(ws.raw) <= maxBufferedBytes) return true;
  ws.close(1008, "client too slow");
  return false;
}

/**
 * Close a connection whose user may no longer watch, with 1008 (or `code`, e.g. 1013 when access
 * could not be re-checked). Its turns are detached first, so closing does not abort them (see the
 * module doc).
 */
function revoke(ws: { close(code: number, reason: string): void }, conn: Conn, reason: string, code = 1008): void {
  conn.runs.clear();
  ws.close(code, reason);
}

/** The WebSocket live view as an Elysia plugin (see the module doc). */
export const aguiWsRoutes = (deps: AppDeps) => {
  const conns = new Map<string, Conn>();

  /**
   * The user, or null when not authenticated; throws only a 503 (identity provider unavailable).
   * Reads the bearer token (header or subprotocol) and, for a trusted proxy's peer address, the
   * forwarded identity headers, as HTTP requests do; nothing else of the upgrade request.
   */
  const authenticateWs = async (request: Request, remoteAddress: string | undefined): Promise<Extract<Principal, { kind: "user" }> | null> => {
    const headers = new Headers();
    const { authorization } = wsBearer(request.headers);
    if (authorization) headers.set("authorization", authorization);
    for (const name of FORWARDED_IDENTITY_HEADERS) {
      const value = request.headers.get(name);
      if (value !== null) headers.set(name, value);
    }
    try {
      const p = await deps.authenticator.authenticate({ headers, ...(remoteAddress ? { remoteAddress } : {}) });
      return p?.kind === "user" ? p : null;
    } catch (err) {
      if (err instanceof TurnkeyError && err.status === 503) throw err;
      return null;
    }
  };
  const logUnavailable = unavailableLogger(deps.logger);
  /** `authenticateWs`, closing with 1013 "try again later" when the identity provider is unavailable (not 1008: the client should retry). */
  const authenticateOr1013 = async (ws: { close(code: number, reason: string): void }, request: Request, remoteAddress: string | undefined) => {
    try {
      return await authenticateWs(request, remoteAddress);
    } catch (err) {
      logUnavailable(err);
      ws.close(1013, "identity provider unavailable, try again later");
      return undefined;
    }
  };

  return new Elysia({ name: "aguiWsRoutes" }).ws("/api/projects/:project/agentic-sessions/:session/agui/ws", {
    params: SessionParams,
    // Browsers fail the handshake unless the server selects one of the offered subprotocols.
    upgrade({ request }) {
      const protocol = selectSubprotocol(request.headers.get("sec-websocket-protocol"));
      return protocol ? { "Sec-WebSocket-Protocol": protocol } : {};
    },
    open(ws) {
      const { project, session } = ws.data.params;
      // Register at once: a client may send its first message before authentication finishes.
      const conn: Conn = { unsubscribe: () => {}, release: () => {}, runs: new Set(), ready: Promise.resolve(false) };
      conns.set(ws.id, conn);
      const guarded = guardMessage(ws.raw, deps.config.maxBodyBytes, (err) => {
        const error = { type: "error", error: err.message, code: err.code };
        void conn.ready.then((ok) => ok && sendBounded(ws, JSON.stringify(error)));
      });
      if (!guarded) {
        deps.logger.error({}, "websocket message size check unavailable (Elysia internals changed); refusing the connection");
        ws.close(1011, "internal error");
        return;
      }
      conn.ready = (async () => {
        const sinceVersion = deps.bus.membershipVersion(project, session);
        const user = await authenticateOr1013(ws, ws.data.request, peer(ws.raw));
        if (user === undefined) return false;
        if (!user) return fail1008(ws, "authentication failed");
        const role = await deps.sessions.roleOf(project, session, user.userId, subjectOf(user)).catch(() => "none" as const);
        if (!mayPerform(role, "watch")) return fail1008(ws, "not a participant of this session");
        if (!conns.has(ws.id)) return false; // closed meanwhile
        const slot = watcherSlotsFor(deps.config).acquire(user.userId);
        if ("refused" in slot) {
          ws.close(1013, "try again later");
          return false;
        }
        conn.release = slot.release;
        const offEvents = deps.bus.subscribe(project, session, (event) => {
          if (!sendBounded(ws, jsonOf(event))) {
            conn.tooSlow = true;
            offEvents();
          }
        });
        conn.unsubscribe = offEvents;
        conn.guard = guardWatcher({
          bus: deps.bus,
          sessions: deps.sessions,
          project,
          session,
          userId: user.userId,
          recheckMs: deps.config.watchRecheckMs,
          sinceVersion,
          reauthenticate: () => authenticateWs(ws.data.request, peer(ws.raw)),
          onEnd: (reason) =>
            reason === "check_failed" ? revoke(ws, conn, "could not re-check access, try again later", 1013) : revoke(ws, conn, "no longer allowed to watch this session"),
        });
        return true;
      })();
    },
    async message(ws, message) {
      const conn = conns.get(ws.id);
      if (!conn || !(await conn.ready)) return;
      const { project, session } = ws.data.params;
      const fail = (err: unknown) => {
        const e = err instanceof TurnkeyError ? err : new TurnkeyError(500, "internal_error", "internal error");
        sendBounded(ws, JSON.stringify({ type: "error", error: e.message, code: e.code }));
      };
      const msg = message as { type?: unknown; input?: unknown } | null;
      if (!msg || typeof msg !== "object" || msg.type !== "run" || typeof msg.input !== "object" || msg.input === null)
        return fail(new TurnkeyError(400, "bad_request", 'expected {"type":"run","input":RunAgentInput}'));
      // The same edge checks as `POST …/agui/run` (run ID shape, message limits).
      const invalid = Value.Errors(RunAgentInputBody, msg.input).First();
      if (invalid) return fail(new TurnkeyError(400, "validation_failed", `invalid RunAgentInput: ${invalid.path || "input"}: ${invalid.message}`));
      // Re-authenticate and re-authorise for every turn: tokens expire, collaborators are removed.
      let user: Extract<Principal, { kind: "user" }> | null;
      try {
        user = await authenticateWs(ws.data.request, peer(ws.raw));
      } catch (err) {
        return fail(err); // identity provider unavailable: an error frame, the socket stays
      }
      if (!user) return revoke(ws, conn, "authentication failed");
      try {
        const role = await deps.sessions.roleOf(project, session, user.userId, subjectOf(user));
        if (role === "none") return revoke(ws, conn, "no longer a participant of this session");
        if (!mayPerform(role, "run")) throw new TurnkeyError(403, "forbidden", "view collaborators may watch but not send turns");
        const input = completeRunInput(msg.input as Record<string, unknown>, session);
        const subject = subjectOf(user);
        const turn = await deps.turns.prepare({ userId: user.userId, userName: user.userName, ...(subject ? { subject } : {}) }, project, session, input);
        const abort = new AbortController();
        conn.runs.add(abort);
        // Closed while the turn was being prepared: `close` found no run to abort, so abort it here
        // (it still runs its teardown and clears the active run; found by a second break-it review).
        if (!conns.has(ws.id)) abort.abort(new TurnAbort("client_disconnected", "Client disconnected"));
        // Events reach this socket through the session subscription, like everyone else's.
        // Backpressure from this socket's send buffer, as for the SSE requester (src/http/flow.ts).
        const flow = streamFlow({ waitingBytes: () => bufferedAmount(ws.raw), closed: () => !conns.has(ws.id) }, abort, deps.config.clientStallMs);
        void turn.execute(() => {}, abort.signal, flow).finally(() => conn.runs.delete(abort));
      } catch (err) {
        fail(err);
      }
    },
    close(ws) {
      const conn = conns.get(ws.id);
      if (!conn) return;
      conns.delete(ws.id);
      conn.release();
      conn.unsubscribe();
      conn.guard?.stop();
      // A socket cut for not reading was closed by sendBounded with "client too slow".
      const slow = conn.tooSlow;
      for (const a of conn.runs)
        a.abort(slow ? new TurnAbort(CLIENT_TOO_SLOW, "Client too slow to read the WebSocket") : new TurnAbort("client_disconnected", "Client disconnected"));
    },
  });
};
