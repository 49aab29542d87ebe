/**
 * Start a real Turnkey gateway as a child process (`bun src/main.ts serve`), for end-to-end tests
 * that need settings Bun only reads at process start, above all `NODE_EXTRA_CA_CERTS` (the
 * Kubernetes backend under Bun, see docs/kubernetes.md). The child gets a clean environment: the
 * test's own `TURNKEY_*` variables are not inherited, only `PATH`/`HOME` and what `env` names.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jsonApi, type ApiOptions, type ApiResponse } from "./http.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** A running gateway process. */
export interface GatewayProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  dataDir: string;
  /** Everything the child wrote to stderr so far (its pino log lines), for failure messages. */
  log(): string;
  /** JSON request helper; returns the status and the parsed body (or text). */
  api(method: string, path: string, opts?: ApiOptions): Promise<ApiResponse>;
  /**
   * SIGTERM, wait for exit (SIGKILL after `graceMs`, default 5000), remove the data dir.
   * @returns the exit code (null when it had to be killed).
   */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL the gateway (a crash: no teardown runs) and wait for it to exit; its data dir stays. */
  crash(): Promise<void>;
}

/**
 * Spawn the gateway on a free loopback port and wait for its `turnkey listening` log line.
 * @param env settings for the child (`TURNKEY_*`, `KUBECONFIG`, `NODE_EXTRA_CA_CERTS`, ...);
 *   `TURNKEY_PORT=0`, a temp `TURNKEY_DATA_DIR` and `TURNKEY_LOG_LEVEL=info` are defaults.
 * @param opts.startTimeoutMs how long to wait for the listening line; default 15000.
 * @param opts.command the argv to run; default `bun src/main.ts serve` (e.g. a compiled binary).
 * @throws Error with the child's log when it exits or does not listen in time.
 */
export async function startGatewayProcess(env: Record<string, string>, opts: { startTimeoutMs?: number; command?: string[] } = {}): Promise<GatewayProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "turnkey-gwp-"));
  const childEnv: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? tmpdir(),
    TURNKEY_PORT: "0",
    TURNKEY_DATA_DIR: dataDir,
    TURNKEY_LOG_LEVEL: "info",
    TURNKEY_TEARDOWN_GRACE_MS: "1000",
    ...env,
  };
  const proc = Bun.spawn(opts.command ?? [process.execPath, "src/main.ts", "serve"], { cwd: ROOT, env: childEnv, stdout: "ignore", stderr: "pipe" });
  let stderr = "";
  let url: string | undefined;
  let onListening: (() => void) | undefined;
  const listening = new Promise<void>((r) => (onListening = r));
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
      if (url) continue;
      for (const line of stderr.split("\n")) {
        try {
          const rec = JSON.parse(line) as { msg?: string; url?: string };
          if (rec.msg === "turnkey listening" && rec.url) {
            url = rec.url;
            onListening?.();
          }
        } catch {
          /* partial or non-JSON line */
        }
      }
    }
  })();
  const timeoutMs = opts.startTimeoutMs ?? 15_000;
  const outcome = await Promise.race([
    listening.then(() => "up" as const),
    proc.exited.then(() => "exited" as const),
    Bun.sleep(timeoutMs).then(() => "timeout" as const),
  ]);
  if (outcome !== "up" || !url) {
    proc.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
    throw new Error(`gateway did not start (${outcome}):\n${stderr}`);
  }
  const base = url;
  const api = jsonApi(base);
  return {
    url: base,
    dataDir,
    log: () => stderr,
    api,
    async stop(graceMs = 5000) {
      proc.kill("SIGTERM");
      const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
      if (!done) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
      return done ? proc.exitCode : null;
    },
    async crash() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}
