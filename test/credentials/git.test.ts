import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm, unlink } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { buildGitConfig, normalizeGitHost } from "../../src/credentials/git.ts";
import { buildTurnEnvironment } from "../../src/credentials/turn-environment.ts";
import { writeTurnFiles } from "../../src/runner/turn-dir.ts";
import type { TurnContext } from "../../src/runner/types.ts";
import { startGitServer, type GitServer } from "../helpers/git-server.ts";
import { makeContext, SECRETS } from "../runner/context.ts";

let srv: GitServer;
let glSrv: GitServer;
const dirs: string[] = [];
const realGitconfig = join(homedir(), ".gitconfig");
const gitconfigBefore = existsSync(realGitconfig) ? readFileSync(realGitconfig, "utf8") : null;

beforeAll(async () => {
  srv = await startGitServer({ token: SECRETS.github });
  glSrv = await startGitServer({ token: SECRETS.gitlab });
});
afterAll(async () => {
  await srv.stop();
  await glSrv.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Write the turn's files into a fresh dir (with a space and a quote in its path) and return its env. */
async function turnEnv(ctx: TurnContext, hosts: { github?: string[]; gitlab?: string[] } = {}) {
  const turnDir = await mkdtemp(join(tmpdir(), "turnkey git 'q' "));
  dirs.push(turnDir);
  const te = buildTurnEnvironment(ctx, {
    turnDir,
    passthrough: [],
    baseEnv: process.env,
    githubHosts: hosts.github ?? [srv.url],
    gitlabHosts: hosts.gitlab ?? [glSrv.url],
  });
  await writeTurnFiles(turnDir, te.files);
  return { turnDir, env: te.env };
}

async function git(args: string[], env: Record<string, string>, cwd: string) {
  const p = Bun.spawn(["git", ...args], { env, cwd, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  p.stdin.end();
  const timer = setTimeout(() => p.kill("SIGKILL"), 15_000); // a prompt hang would show as a kill
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { stdout, stderr, code, signal: p.signalCode };
}

describe("per-turn git credential helper against a loopback git server", () => {
  test("ls-remote succeeds with the sender's GitHub token, as x-access-token", async () => {
    const { env, turnDir } = await turnEnv(makeContext());
    const r = await git(["ls-remote", srv.repoUrl], env, turnDir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(srv.head);
    expect(srv.requests.some((q) => q.user === "x-access-token")).toBe(true);
  });

  test("GitLab host gets the GitLab token, as oauth2", async () => {
    const { env, turnDir } = await turnEnv(makeContext());
    const r = await git(["ls-remote", glSrv.repoUrl], env, turnDir);
    expect(r.code).toBe(0);
    expect(glSrv.requests.some((q) => q.user === "oauth2")).toBe(true);
  });

  test("fails fast, without prompting, when the sender has no GitHub credential", async () => {
    const started = Date.now();
    const { env, turnDir } = await turnEnv(makeContext({ credentials: {} }));
    const r = await git(["ls-remote", srv.repoUrl], env, turnDir);
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/terminal prompts disabled|Authentication failed|could not read Username/i);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test("the GitLab token is not offered to a GitHub host (sender has only GitLab)", async () => {
    const { env, turnDir } = await turnEnv(makeContext({ credentials: { gitlab: { token: SECRETS.github } } }));
    const r = await git(["ls-remote", srv.repoUrl], env, turnDir);
    expect(r.code).not.toBe(0);
  });

  test("no answer for a host that is not configured", async () => {
    const { env, turnDir } = await turnEnv(makeContext(), { github: ["github.com"], gitlab: [] });
    const r = await git(["ls-remote", srv.repoUrl], env, turnDir);
    expect(r.code).not.toBe(0);
  });

  test("no answer once the token file is gone (after teardown)", async () => {
    const { env, turnDir } = await turnEnv(makeContext());
    await unlink(join(turnDir, "github_token"));
    const r = await git(["ls-remote", srv.repoUrl], env, turnDir);
    expect(r.code).not.toBe(0);
  });

  test("git reports the turn's identity and only the turn's helpers", async () => {
    const { env, turnDir } = await turnEnv(makeContext());
    expect((await git(["config", "--get", "user.name"], env, turnDir)).stdout.trim()).toBe("Alice Example");
    expect((await git(["config", "--get", "user.email"], env, turnDir)).stdout.trim()).toBe("alice@users.noreply.github.com");
    const helpers = await git(["config", "--show-origin", "--get-all", "credential.helper"], env, turnDir);
    // Only the empty reset entry applies outside the per-URL sections, and it comes from the turn's file.
    expect(helpers.stdout.trim()).toBe(`file:${join(turnDir, "gitconfig")}`);
  });

  test("the machine's ~/.gitconfig is untouched", () => {
    const after = existsSync(realGitconfig) ? readFileSync(realGitconfig, "utf8") : null;
    expect(after).toBe(gitconfigBefore);
  });

  test("turn files are 0600", async () => {
    const { turnDir } = await turnEnv(makeContext());
    for (const f of ["github_token", "gitlab_token", "google_credentials.json", "gitconfig"])
      expect(statSync(join(turnDir, f)).mode & 0o777).toBe(0o600);
  });
});

describe("normalizeGitHost", () => {
  test.each([
    ["github.com", "https://github.com"],
    ["GitLab.Example.org:8443", "https://gitlab.example.org:8443"],
    ["http://127.0.0.1:34567", "http://127.0.0.1:34567"],
    ["https://git.example.com/", "https://git.example.com"],
  ])("%s → %s", (entry, url) => expect(normalizeGitHost(entry)).toBe(url));
  test.each(["ftp://x", "https://user:pw@x.example", "not a host", "x.example\nfoo"])("rejects %p", (entry) =>
    expect(() => normalizeGitHost(entry)).toThrow(/invalid setting githubHosts/),
  );
});

test("buildGitConfig quotes values and refuses newlines", () => {
  const text = buildGitConfig({ userName: 'A "q" \\ b', userEmail: "a@b", hosts: [] });
  expect(text).toContain('name = "A \\"q\\" \\\\ b"');
  expect(text).toMatch(/\[credential\]\n\thelper =\n\tuseHttpPath = false/);
  expect(() => buildGitConfig({ userName: "a", userEmail: "b", hosts: [{ url: "https://x", username: "u", tokenFile: "/a\nb" }] })).toThrow();
});
