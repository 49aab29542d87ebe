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
  const c = collector(() => ac.abort());
  const ids: number[] = [];
  const comments: string[] = [];
  let ended: Promise<void> = Promise.resolve();
  if (res.status === 200 && res.body) {
    ended = (async () => {
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
  } else {
    await res.body?.cancel();
  }
  return Object.assign(c, { status: res.status, ids, comments, ended });
}

/**
 * Open a WebSocket; resolves once open (or closed). Frames are parsed as JSON. `protocols` are
 * offered as given (after `bearer.<protocolToken>` is, when set, and replacing it when both are).
 * The selected subprotocol is `ws.protocol`.
 */
export async function openWs(url: string, opts: { token?: string; protocolToken?: string; protocols?: string[] }): Promise<Collector & { ws: WebSocket; closed: Promise<{ code: number; reason: string }>; send(v: unknown): void }> {
  const init: Record<string, unknown> = {};
  if (opts.token) init.headers = { authorization: `Bearer ${opts.token}` };
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
