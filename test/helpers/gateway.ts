/**
 * Start a real Turnkey gateway on a loopback port with a fresh data dir, for end-to-end tests.
 * Everything goes through the real composition root (src/server.ts) and real HTTP.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { startServer, type RunningServer } from "../../src/server.ts";
import { DevIssuer } from "../../src/identity/dev-issuer.ts";
import { jsonApi, type ApiOptions, type ApiResponse } from "./http.ts";

export interface TestGateway {
  url: string;
  dataDir: string;
  server: RunningServer;
  /** A development user token for `userId`. */
  token(userId: string, name?: string): Promise<string>;
  /** JSON request helper; returns status and parsed body (or text). */
  api(method: string, path: string, opts?: ApiOptions): Promise<ApiResponse>;
  /** Wait (up to `ms`) until no turn is active: watchers see RUN_FINISHED before teardown ends. */
  idle(ms?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Start a gateway. `env` are extra TURNKEY_* settings (strings, as in the environment). */
export async function startGateway(env: Record<string, string> = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), "turnkey-e2e-"));
  let cfg: ReturnType<typeof loadConfig>;
  let server: RunningServer;
  try {
    cfg = loadConfig({ TURNKEY_DATA_DIR: dataDir, TURNKEY_PORT: "0", TURNKEY_LOG_LEVEL: "silent", TURNKEY_TEARDOWN_GRACE_MS: "1000", ...env });
    server = await startServer(cfg);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const issuer = await DevIssuer.open(cfg);
  const api = jsonApi(server.url);
  return {
    url: server.url,
    dataDir,
    server,
    token: (userId, name) => issuer.mint({ userId, ...(name ? { name } : {}) }),
    api,
    async idle(ms = 10_000) {
      const end = Date.now() + ms;
      while (server.deps.activeRuns.size > 0) {
        if (Date.now() > end) throw new Error("turns still active");
        await Bun.sleep(10);
      }
    },
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Run each step against its own gateway, started one after another on the same fresh data dir:
 * a gateway restart between steps. Each gateway is stopped (after its turns ended) before the
 * next starts; the data dir is removed at the end.
 */
export async function acrossRestarts(env: Record<string, string>, ...steps: ((gw: TestGateway) => Promise<void>)[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "turnkey-restart-"));
  try {
    for (const step of steps) {
      const gw = await startGateway({ ...env, TURNKEY_DATA_DIR: dir });
      try {
        await step(gw);
        await gw.idle();
      } finally {
        await gw.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `TURNKEY_RUNNER_COMMAND` (a JSON argv) running the fixture runner `test/fixtures/runners/<name>.ts` with this Bun. */
export const fixtureRunner = (name: string) => JSON.stringify([process.execPath, resolve(import.meta.dir, `../fixtures/runners/${name}.ts`)]);

/** Poll `pred` every 20 ms until it holds. @throws Error after `ms` (default 10 000 ms). */
export async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(20);
  }
}

/** Parse an SSE body into AG-UI events (ignores comments). */
export function parseSse(text: string): any[] {
  return text
    .split(/\n\n/)
    .map((block) => block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"))
    .filter(Boolean)
    .map((d) => JSON.parse(d));
}

/** POST a run and read the whole SSE stream. */
export async function runTurn(gw: TestGateway, project: string, session: string, token: string, input: Record<string, unknown> = {}): Promise<{ status: number; events: any[]; text: string; body: any }> {
  const res = await fetch(`${gw.url}/api/projects/${project}/agentic-sessions/${session}/agui/run`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ messages: [{ id: "m1", role: "user", content: "hello" }], ...input }),
  });
  const text = await res.text();
  let body: unknown = null;
  if (res.status !== 200) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: res.status, events: res.status === 200 ? parseSse(text) : [], text, body };
}

/** All text message content of a turn, concatenated. */
export const textOf = (events: any[]) => events.filter((e) => e.type === "TEXT_MESSAGE_CONTENT").map((e) => e.delta).join("");
