import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { LocalRunnerSupervisor } from "../../src/runner/supervisor.ts";
import { makeContext, SECRETS } from "./context.ts";
import { runTurn, text } from "./harness.ts";

const HELLO = resolve(import.meta.dir, "../../examples/runners/hello.ts");
let root: string;
let server: ReturnType<typeof Bun.serve>;
/** What the fake credential endpoint answers for github: a token, 404, or 500. */
let answer: { token: string } | 404 | 500 = { token: SECRETS.github };
const seen: { path: string; auth: string | null }[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "turnkey-hello-"));
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      seen.push({ path: new URL(req.url).pathname, auth: req.headers.get("authorization") });
      if (typeof answer === "number") return Response.json({ error: "x", code: answer === 404 ? "credential_not_found" : "store_unavailable" }, { status: answer });
      return Response.json({ ...answer, provider: "github" });
    },
  });
});
afterAll(async () => {
  server.stop(true);
  await rm(root, { recursive: true, force: true });
});

const sup = () =>
  new LocalRunnerSupervisor({
    command: [process.execPath, HELLO],
    graceMs: 2000,
    githubHosts: ["github.com"],
    gitlabHosts: ["gitlab.com"],
    turnsRoot: join(root, "turns"),
  });
const ctx = (over: Parameters<typeof makeContext>[0] = {}) => makeContext({ credentialsUrl: `http://127.0.0.1:${server.port}/api`, ...over });

describe("examples/runners/hello.ts", () => {
  test("greets the sender, lists providers, shows the git identity, token matches", async () => {
    answer = { token: SECRETS.github };
    const r = await runTurn(sup(), ctx());
    expect(r.outcome.status).toBe("finished");
    expect(r.types).toEqual(["RUN_STARTED", "TEXT_MESSAGE_START", ...Array(5).fill("TEXT_MESSAGE_CONTENT"), "TEXT_MESSAGE_END", "RUN_FINISHED"]);
    const t = text(r.events);
    expect(t).toContain("Hello, Alice Example!");
    expect(t).toContain("You said: hello");
    expect(t).toContain("This turn has credentials for: github, gitlab, jira, google, coderabbit.");
    expect(t).toContain("Git identity: Alice Example <alice@users.noreply.github.com>.");
    expect(t).toContain("GitHub token from the credential endpoint: matches.");
    expect(seen.at(-1)).toEqual({ path: "/api/projects/proj-a/agentic-sessions/sess-1/credentials/github", auth: `Bearer ${SECRETS.turnToken}` });
    expect(JSON.stringify(r.events)).not.toContain("[REDACTED]"); // it never printed a secret in the first place
  });

  test.each([
    ["differs", { token: "ghp_someone-elses-token-000" }, {}, "differs"],
    ["not configured", 404, { credentials: {} }, "not configured"],
    ["endpoint failing", 500, {}, "could not check (HTTP 500 store_unavailable)"],
  ] as const)("%s", async (_n, a, over, want) => {
    answer = a as typeof answer;
    const r = await runTurn(sup(), ctx(over));
    expect(r.outcome.status).toBe("finished");
    expect(text(r.events)).toContain(`GitHub token from the credential endpoint: ${want}.`);
  });

  test("unreachable endpoint is reported, not fatal", async () => {
    const r = await runTurn(sup(), makeContext({ credentialsUrl: "http://127.0.0.1:9/api", credentials: {} }));
    expect(r.outcome.status).toBe("finished");
    expect(text(r.events)).toContain("could not check (credential endpoint unreachable)");
    expect(text(r.events)).toContain("This turn has credentials for: none.");
  });
});
