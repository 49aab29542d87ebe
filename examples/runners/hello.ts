#!/usr/bin/env bun
/**
 * hello: Turnkey's default local runner, and the smallest real AG-UI runner that uses the
 * per-turn environment (DESIGN §3). Run as `bun examples/runners/hello.ts`.
 *
 * Protocol: reads one RunAgentInput JSON from stdin (Turnkey closes stdin after it), writes one
 * AG-UI event per stdout line: RUN_STARTED, one assistant text message, RUN_FINISHED (or
 * RUN_ERROR if something unexpected breaks). Diagnostics go to stderr.
 *
 * The message greets the sender ($CURRENT_USER_NAME), names the providers this turn has (names
 * only, from which variables are set), shows the git identity git will commit as (from the
 * turn's $GIT_CONFIG_GLOBAL), and checks the credential endpoint: it fetches
 * `$TURNKEY_CREDENTIALS_URL/projects/$PROJECT_NAME/agentic-sessions/$SESSION_ID/credentials/github`
 * with `Authorization: Bearer $TURNKEY_TURN_TOKEN` and says whether the token it got "matches"
 * $GITHUB_TOKEN, "differs", or is "not configured". It never prints a token.
 */
import { spawnSync } from "node:child_process";
import { EventType, type RunAgentInput } from "@ag-ui/core";

/** Provider → the variable whose presence means the turn has that credential (DESIGN §3). */
const PROVIDER_VARS: [string, string][] = [
  ["github", "GITHUB_TOKEN"],
  ["gitlab", "GITLAB_TOKEN"],
  ["jira", "JIRA_API_TOKEN"],
  ["google", "GOOGLE_APPLICATION_CREDENTIALS"],
  ["coderabbit", "CODERABBIT_API_KEY"],
];

/** How long the credential endpoint may take, ms. */
const FETCH_TIMEOUT_MS = 5000;

const env = process.env;

function emit(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ ...event, timestamp: Date.now() }) + "\n");
}

async function readInput(): Promise<RunAgentInput> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8").trim();
  return JSON.parse(text || "{}") as RunAgentInput;
}

/** `git config --get <key>` with this process's (the turn's) environment; null if unset or no git. */
function gitConfig(key: string): string | null {
  const r = spawnSync("git", ["config", "--get", key], { env, encoding: "utf8", timeout: 5000 });
  if (r.error || r.status !== 0) return null;
  return r.stdout.trim() || null;
}

/** Ask the gateway for this turn's GitHub credential and compare it with $GITHUB_TOKEN. */
async function checkGithubEndpoint(): Promise<string> {
  const base = env.TURNKEY_CREDENTIALS_URL;
  const token = env.TURNKEY_TURN_TOKEN;
  if (!base || !token || !env.PROJECT_NAME || !env.SESSION_ID) return "could not check (no credential endpoint in this environment)";
  const url =
    `${base.replace(/\/+$/, "")}/projects/${encodeURIComponent(env.PROJECT_NAME)}` +
    `/agentic-sessions/${encodeURIComponent(env.SESSION_ID)}/credentials/github`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (err) {
    process.stderr.write(`hello: credential endpoint unreachable: ${(err as Error).name}\n`);
    return "could not check (credential endpoint unreachable)";
  }
  if (res.status === 404) return env.GITHUB_TOKEN ? "differs (endpoint has none, environment has one)" : "not configured";
  if (!res.ok) {
    let code = "";
    try {
      code = String(((await res.json()) as { code?: unknown }).code ?? "");
    } catch {
      // not JSON: the status is enough
    }
    return `could not check (HTTP ${res.status}${code ? ` ${code}` : ""})`;
  }
  let got: unknown;
  try {
    got = ((await res.json()) as { token?: unknown }).token;
  } catch {
    return "could not check (response is not JSON)";
  }
  if (typeof got !== "string" || got === "") return env.GITHUB_TOKEN ? "differs" : "not configured";
  return got === env.GITHUB_TOKEN ? "matches" : "differs";
}

function lastUserMessage(input: RunAgentInput): string | null {
  for (const m of [...(input.messages ?? [])].reverse()) {
    if (m.role !== "user") continue;
    const content = (m as { content?: unknown }).content;
    if (typeof content === "string") return content;
  }
  return null;
}

async function main(): Promise<void> {
  let input: RunAgentInput;
  try {
    input = await readInput();
  } catch {
    input = {} as RunAgentInput;
  }
  const threadId = input.threadId ?? env.THREAD_ID ?? "thread";
  const runId = input.runId ?? env.RUN_ID ?? "run";
  emit({ type: EventType.RUN_STARTED, threadId, runId });
  try {
    const messageId = `hello-${runId}`;
    emit({ type: EventType.TEXT_MESSAGE_START, messageId, role: "assistant" });
    const say = (line: string) => emit({ type: EventType.TEXT_MESSAGE_CONTENT, messageId, delta: line + "\n" });

    say(`Hello, ${env.CURRENT_USER_NAME || env.CURRENT_USER_ID || "there"}!`);
    const said = lastUserMessage(input);
    if (said) say(`You said: ${said.length > 200 ? said.slice(0, 200) + "…" : said}`);
    const providers = PROVIDER_VARS.filter(([, v]) => env[v]).map(([p]) => p);
    say(`This turn has credentials for: ${providers.length ? providers.join(", ") : "none"}.`);
    const name = gitConfig("user.name");
    const email = gitConfig("user.email");
    say(name || email ? `Git identity: ${name ?? "(no name)"} <${email ?? "no email"}>.` : "Git identity: not configured.");
    say(`GitHub token from the credential endpoint: ${await checkGithubEndpoint()}.`);

    emit({ type: EventType.TEXT_MESSAGE_END, messageId });
    emit({ type: EventType.RUN_FINISHED, threadId, runId });
  } catch (err) {
    process.stderr.write(`hello: ${(err as Error).stack ?? String(err)}\n`);
    emit({ type: EventType.RUN_ERROR, message: "hello runner failed", code: "hello_failed" });
  }
}

// Run when executed (`bun examples/runners/hello.ts`); the compiled `turnkey` binary runs it as
// `turnkey example-runner` instead, since it has no file to hand to a runtime.
if (import.meta.main) await main();

export { main as runHelloRunner };
