#!/usr/bin/env bun
/**
 * The `turnkey` command line (argument parsing by node:util `parseArgs`).
 *
 *   turnkey [serve] [flags]          run the gateway (default)
 *   turnkey token --user ID          print a development user token (embedded default)
 *   turnkey sessions <verb> ...      operate on sessions in the data dir
 *   turnkey credentials <verb> ...   operate on stored credentials in the data dir
 *   turnkey version                  print the version
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
import { parseArgs } from "node:util";
import { ENV_SETTINGS, flagName, loadConfig, SECRET_KEYS, type Config } from "./config.ts";
import { ConfigError, TurnkeyError } from "./errors.ts";
import { runCredentialsCommand, runSessionsCommand, runTokenCommand } from "./cli/operator.ts";
import pkg from "../package.json" with { type: "json" };

const SERVE_FLAGS: Record<string, { type: "string" }> = Object.fromEntries(
  [...new Set(Object.values(ENV_SETTINGS).map(([k]) => k))].map((k) => [flagName(k), { type: "string" as const }]),
);

const SERVE_HELP = `turnkey serve: run the per-turn credential gateway

Usage: turnkey [serve] [--flag value ...]

Every flag has a TURNKEY_* environment variable (flags win). Main ones:
  --host TURNKEY_HOST                          listen address (127.0.0.1)
  --port TURNKEY_PORT                          listen port (8080; 0 = any free port)
  --data-dir TURNKEY_DATA_DIR                  embedded store, keys, audit log (./.turnkey)
  --runner-command TURNKEY_RUNNER_COMMAND      runner argv as a JSON array (bundled example runner)
  --runner-env-passthrough TURNKEY_RUNNER_ENV_PASSTHROUGH  extra variables a runner may inherit (comma list)
  --turn-timeout-ms TURNKEY_TURN_TIMEOUT_MS    turn deadline, ms (1800000)
  --teardown-grace-ms TURNKEY_TEARDOWN_GRACE_MS  SIGTERM→SIGKILL grace, ms (5000)
  --providers TURNKEY_PROVIDERS                enabled providers (github,gitlab,jira,google,coderabbit,gerrit)
  --github-hosts / --gitlab-hosts              hosts the per-turn git credential helper answers for
  TURNKEY_MASTER_KEY (environment only)        base64url 32-byte key for credentials at rest (else a key file)
  --audit TURNKEY_AUDIT                        file (<data dir>/audit.log) or stdout
  --log-level TURNKEY_LOG_LEVEL                trace|debug|info|warn|error|fatal|silent (info)
  --jwt-issuer / --jwt-audience / --jwks-url   user JWT verification (default: built-in development issuer)
All flags: ${[...new Set(Object.values(ENV_SETTINGS).map(([k]) => k))].filter((k) => !SECRET_KEYS.has(k)).map((k) => "--" + flagName(k)).join(" ")}
`;

const MAIN_HELP = `turnkey ${pkg.version}: per-turn credential gateway for shared AI-agent sessions

Usage: turnkey <command> [options]

Commands:
  serve         run the gateway (default)
  token         print a development user token
  sessions      create, get, list, share and unshare sessions in the data dir
  credentials   set, list and delete stored credentials in the data dir
  version       print the version
  example-runner  the bundled example AG-UI runner (stdin: RunAgentInput, stdout: AG-UI events)

Run 'turnkey <command> --help' for a command's options.
`;

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...SERVE_FLAGS, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: false });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const flags: Partial<Record<keyof Config, string>> = {};
  for (const [k] of Object.values(ENV_SETTINGS)) {
    const v = (values as Record<string, unknown>)[flagName(k)];
    if (typeof v === "string") flags[k] = v;
  }
  const cfg = loadConfig(process.env, flags);
  const { startServer } = await import("./server.ts");
  // Handlers first: a SIGTERM that arrives while the server is still starting (its "listening"
  // line is already out) must still shut down cleanly, not kill the process mid-start.
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let requested: string | undefined;
  const shutdown = async (signal: string) => {
    if (!server) {
      requested = signal;
      return;
    }
    server.deps.logger.info({ signal }, "shutting down");
    await server.stop();
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
  server = await startServer(cfg);
  if (requested) await shutdown(requested);
  return -1; // keep running
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  switch (first) {
    case undefined:
      return serve([]);
    case "serve":
      return serve(rest);
    case "token":
      return runTokenCommand(rest);
    case "sessions":
      return runSessionsCommand(rest);
    case "credentials":
      return runCredentialsCommand(rest);
    case "example-runner": {
      // The bundled example runner, for the compiled binary's default runner command.
      const { runHelloRunner } = await import("../examples/runners/hello.ts");
      await runHelloRunner();
      return 0;
    }
    case "version":
    case "--version":
      if (rest.includes("--help") || rest.includes("-h")) {
        process.stdout.write("turnkey version: print the version\n\nUsage: turnkey version\n");
        return 0;
      }
      process.stdout.write(`turnkey ${pkg.version}\n`);
      return 0;
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(MAIN_HELP);
      return 0;
    default:
      if (first.startsWith("--")) return serve(argv);
      process.stderr.write(`turnkey: unknown command ${JSON.stringify(first)}\n\n${MAIN_HELP}`);
      return 2;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (err: unknown) => {
      if (err instanceof ConfigError) {
        process.stderr.write(`turnkey: ${err.message}\n`);
        process.exit(2);
      }
      if (err instanceof TurnkeyError) {
        process.stderr.write(`turnkey: ${err.message} (${err.code})\n`);
        process.exit(err.status < 500 ? 2 : 1);
      }
      const e = err as { code?: string; message?: string };
      if (e?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || e?.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" || e?.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
        process.stderr.write(`turnkey: ${e.message}\nRun 'turnkey --help'.\n`);
        process.exit(2);
      }
      process.stderr.write(`turnkey: ${e?.message ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
