/**
 * Live stream readers for end-to-end tests: an SSE subscription and a WebSocket client that
 * collect events and let a test wait for one.
 */
import { connect, type Socket } from "node:net";
import { parseSse } from "./gateway.ts";

export interface Collector {
  events: any[];
  /** Resolve with the first collected event matching `pred` (waits up to `ms`). */
  waitFor(pred: (e: any) => boolean, ms?: number): Promise<any>;
  close(): void;
}

function collector(close: () => void): Collector & { push(e: any): void } {
  const events: any[] = [];
  const waiters = new Set<() => void>();
  return {
    events,
    push(e) {
      events.push(e);
      for (const w of [...waiters]) w();
    },
    waitFor(pred, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.find(pred);
          if (hit === undefined) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; saw ${events.map((e) => e.type ?? JSON.stringify(e)).join(",")}`));
        }, ms);
        if (!check()) waiters.add(check);
      });
    },
    close,
  };
}

/**
 * Subscribe to an SSE URL; also returns the response status, the raw `id:` lines and comment
 * lines (without the `: `) seen, and `ended`, which resolves when the server ends the stream.
 */
export async function openSse(
  url: string,
  token: string,
  headers: Record<string, string> = {},
): Promise<Collector & { status: number; ids: number[]; comments: string[]; ended: Promise<void> }> {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: "text/event-stream", ...headers }, signal: ac.signal });
  if (res.status === 200 && res.body) return Object.assign(collectSse(res, () => ac.abort()), { status: res.status });
  await res.body?.cancel();
  return Object.assign(collector(() => ac.abort()), { status: res.status, ids: [], comments: [], ended: Promise.resolve() });
}

/**
 * Read an SSE response (an events stream or a run's stream) as it arrives: its AG-UI events, the
 * `id:` numbers and comment lines (without the `: `) seen, and `ended`, which resolves when the
 * body ends (a read error, e.g. after `close()`, also ends it).
 */
export function collectSse(res: Response, close: () => void = () => {}): Collector & { ids: number[]; comments: string[]; ended: Promise<void> } {
  const c = collector(close);
  const ids: number[] = [];
  const comments: string[] = [];
  const ended = (async () => {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i + 2);
        buf = buf.slice(i + 2);
        const id = /^id: (\d+)$/m.exec(block)?.[1];
        if (id) ids.push(Number(id));
        for (const m of block.matchAll(/^: ?(.*)$/gm)) comments.push(m[1]!);
        for (const e of parseSse(block)) c.push(e);
      }
    }
  })().catch(() => {});
  return Object.assign(c, { ids, comments, ended });
}

/**
 * Open a WebSocket; resolves once open (or closed). Frames are parsed as JSON. `protocols` are
 * offered as given (after `bearer.<protocolToken>` is, when set, and replacing it when both are).
 * The selected subprotocol is `ws.protocol`.
 */
export async function openWs(url: string, opts: { token?: string; protocolToken?: string; protocols?: string[]; headers?: Record<string, string> }): Promise<Collector & { ws: WebSocket; closed: Promise<{ code: number; reason: string }>; send(v: unknown): void }> {
  const init: Record<string, unknown> = {};
  if (opts.token || opts.headers) init.headers = { ...opts.headers, ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) };
  if (opts.protocolToken) init.protocols = [`bearer.${opts.protocolToken}`];
  if (opts.protocols) init.protocols = opts.protocols;
  const ws = new WebSocket(url.replace(/^http/, "ws"), init as never);
  const c = collector(() => ws.close());
  ws.onmessage = (m) => c.push(JSON.parse(String(m.data)));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
  });
  await Promise.race([new Promise((r) => (ws.onopen = r)), closed]);
  return Object.assign(c, { ws, closed, send: (v: unknown) => ws.send(JSON.stringify(v)) });
}

/**
 * A client that sends one request over raw TCP and then stops reading (the socket is paused, so
 * the kernel buffers fill and the server sees backpressure). `websocket: true` makes it a
 * WebSocket upgrade (RFC 6455 §4.1). `drainUntil(pattern)` resumes reading and resolves true once
 * `pattern` arrives, false if the connection closes or `ms` pass first; the socket is then closed.
 */
export function openStalled(url: string, token: string, opts: { websocket?: boolean } = {}): { sock: Socket; drainUntil(pattern: Buffer, ms?: number): Promise<boolean> } {
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  const head = [`GET ${u.pathname} HTTP/1.1`, `Host: ${u.host}`, `Authorization: Bearer ${token}`];
  if (opts.websocket) head.push("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13");
  else head.push("Accept: text/event-stream");
  sock.write(head.join("\r\n") + "\r\n\r\n");
  sock.pause();
  return {
    sock,
    drainUntil(pattern, ms = 10_000) {
      return new Promise((resolve) => {
        let tail = Buffer.alloc(0);
        const finish = (found: boolean) => {
          clearTimeout(timer);
          sock.removeAllListeners("data");
          sock.destroy();
          resolve(found);
        };
        const timer = setTimeout(() => finish(false), ms);
        sock.on("data", (d: Buffer) => {
          const window = Buffer.concat([tail, d]);
          if (window.includes(pattern)) return finish(true);
          tail = window.subarray(Math.max(0, window.length - pattern.length));
        });
        sock.on("close", () => finish(false));
        sock.resume();
      });
    },
  };
}

/**
 * Send a WebSocket upgrade (RFC 6455 §4.1) offering `protocols` and return the raw response head
 * (status line and headers, as text), then close the connection.
 */
export function upgradeResponseHead(url: string, protocols: string[]): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname);
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no upgrade response; got ${JSON.stringify(buf)}`));
    }, 10_000);
    sock.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      clearTimeout(timer);
      sock.destroy();
      resolve(buf.slice(0, end));
    });
    sock.on("error", reject);
    sock.write(
      [`GET ${u.pathname} HTTP/1.1`, `Host: ${u.host}`, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", `Sec-WebSocket-Protocol: ${protocols.join(", ")}`].join("\r\n") + "\r\n\r\n",
    );
  });
}

/** A WebSocket client over raw TCP that reads only when told to (see `openRawWs`). */
export interface RawWs {
  /** Send a JSON value as one masked text frame (RFC 6455 §5.3: client frames are masked). */
  send(value: unknown): void;
  /**
   * Read frames, pausing `delayMs` after each TCP chunk (a slow link), until `stop(type, json)`
   * returns true for a text frame (`json` is parsed only for frames under 64 KiB), a Close frame
   * arrives, the connection ends, or `ms` pass.
   * @returns bytes of payload read, the types of the text frames, and the close code if any.
   */
  read(opts: { delayMs: number; stop: (type: string, json: any) => boolean; ms?: number }): Promise<{ bytes: number; types: string[]; closeCode?: number; stopped: boolean }>;
  close(): void;
}

/**
 * Open a WebSocket to `url` with a bearer header over raw TCP; nothing is read until `read()`,
 * so the server sees its send buffer fill (backpressure tests). Resolves after the 101 response.
 */
export function openRawWs(url: string, token: string): Promise<RawWs> {
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  let buf: Buffer = Buffer.alloc(0);
  const head = [`GET ${u.pathname} HTTP/1.1`, `Host: ${u.host}`, `Authorization: Bearer ${token}`, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"];
  sock.write(head.join("\r\n") + "\r\n\r\n");
  const client: RawWs = {
    send(value) {
      const payload = Buffer.from(JSON.stringify(value));
      const mask = Buffer.from([1, 2, 3, 4]);
      const len = payload.length;
      const header = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff]);
      sock.write(Buffer.concat([header, mask, payload.map((b, i) => b ^ mask[i % 4]!)]));
    },
    read({ delayMs, stop, ms = 30_000 }) {
      return new Promise((resolve) => {
        const out: { bytes: number; types: string[]; closeCode?: number; stopped: boolean } = { bytes: 0, types: [], stopped: false };
        const finish = () => {
          clearTimeout(timer);
          sock.removeAllListeners("data");
          sock.pause();
          resolve(out);
        };
        const timer = setTimeout(finish, ms);
        const frames = () => {
          for (;;) {
            if (buf.length < 2) return false;
            const opcode = buf[0]! & 0x0f;
            let len = buf[1]! & 0x7f;
            let at = 2;
            if (len === 126) {
              if (buf.length < 4) return false;
              len = buf.readUInt16BE(2);
              at = 4;
            } else if (len === 127) {
              if (buf.length < 10) return false;
              len = Number(buf.readBigUInt64BE(2));
              at = 10;
            }
            if (buf.length < at + len) return false;
            const payload = buf.subarray(at, at + len);
            buf = buf.subarray(at + len);
            out.bytes += len;
            if (opcode === 0x8) {
              out.closeCode = len >= 2 ? payload.readUInt16BE(0) : 1005;
              return true;
            }
            if (opcode !== 0x1) continue;
            const type = /"type":"([A-Za-z_]+)"/.exec(payload.subarray(0, 256).toString())?.[1] ?? "";
            out.types.push(type);
            if (stop(type, len < 65536 ? JSON.parse(payload.toString()) : undefined)) return (out.stopped = true);
          }
        };
        sock.on("data", (d: Buffer) => {
          buf = buf.length ? Buffer.concat([buf, d]) : d;
          if (frames()) return finish();
          sock.pause();
          setTimeout(() => sock.resume(), delayMs);
        });
        sock.once("close", finish);
        sock.resume();
      });
    },
    close: () => sock.destroy(),
  };
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      sock.off("data", onData);
      sock.pause();
      const status = buf.subarray(0, buf.indexOf("\r\n")).toString();
      buf = buf.subarray(end + 4);
      if (!status.includes(" 101 ")) return reject(new Error(`upgrade refused: ${status}`));
      resolve(client);
    };
    sock.on("data", onData);
    sock.once("error", reject);
  });
}
