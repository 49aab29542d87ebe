/**
 * End to end through the command line, as an operator uses it: `turnkey serve` as a real
 * process, `token`, `sessions`, `credentials` on the same data dir, `--help`, `version`, and
 * configuration errors that name the bad setting.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawn } from "bun";
import { parseSse } from "../helpers/gateway.ts";
import { startGatewayProcess, type GatewayProcess } from "../helpers/gateway-process.ts";

const MAIN = resolve(import.meta.dir, "../../src/main.ts");

/** Run `turnkey ...args` to completion. */
async function cli(args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}) {
  const p = spawn([process.execPath, MAIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...opts.env },
    stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

describe("the turnkey command line", () => {
  let gw: GatewayProcess;
  let url: string;
  const env = () => ({ TURNKEY_DATA_DIR: gw.dataDir });

  beforeAll(async () => {
    gw = await startGatewayProcess({ TURNKEY_TEARDOWN_GRACE_MS: "500" }, { command: [process.execPath, MAIN, "serve", "--port", "0"] });
    url = gw.url;
  });
  afterAll(async () => {
    await gw?.stop();
  });

  test("version and help", async () => {
    const v = await cli(["version"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^turnkey \d+\.\d+\.\d+/);
    for (const args of [["--help"], ["serve", "--help"], ["token", "--help"], ["sessions", "--help"], ["credentials", "--help"]]) {
      const h = await cli(args);
      expect(h.code).toBe(0);
      expect(h.stdout).toContain("Usage");
    }
  });

  test("usage and configuration errors exit 2 naming the problem", async () => {
    const bad = await cli(["serve", "--port", "eighty"], { env: env() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--port");
    const badEnv = await cli(["serve"], { env: { ...env(), TURNKEY_RUNNER_COMMAND: "not json" } });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toContain("TURNKEY_RUNNER_COMMAND");
    // A runner that does not exist is a start-up error naming the setting, not a failed first turn.
    const own = mkdtempSync(join(tmpdir(), "turnkey-cli-own-")); // the suite's gateway holds env()'s data dir
    const missing = await cli(["serve"], { env: { ...env(), TURNKEY_DATA_DIR: own, TURNKEY_RUNNER_COMMAND: '["no-such-runner-binary"]' } });
    rmSync(own, { recursive: true, force: true });
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringContaining("TURNKEY_RUNNER_COMMAND")]);
    const badChoice = await cli(["serve"], { env: { ...env(), TURNKEY_AUDIT: "syslog" } });
    expect([badChoice.code, badChoice.stderr]).toEqual([2, expect.stringContaining("expected one of: file, stdout")]);
    const unknown = await cli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    const flag = await cli(["serve", "--no-such-flag"]);
    expect(flag.code).toBe(2);
    for (const args of [["sessions"], ["credentials"], ["sessions", "frobnicate"]]) {
      const bare = await cli(args, { env: env() });
      expect([bare.code, bare.stderr]).toEqual([2, expect.stringContaining("Usage:")]);
    }
    const badShare = await cli(["sessions", "create", "--project", "demo", "--session", "x", "--owner", "alice", "--share", "bob:edit:xyz"], { env: env() });
    expect([badShare.code, badShare.stderr]).toEqual([2, expect.stringContaining("--share")]);
    const longTtl = await cli(["token", "--user", "alice", "--ttl", "1e20"], { env: env() });
    expect([longTtl.code, longTtl.stdout]).toEqual([2, ""]);
    // On the kubernetes backend the data dir is not what the gateway reads: refuse, do not pretend.
    const kube = await cli(["credentials", "list", "--user", "bob"], { env: { ...env(), TURNKEY_BACKEND: "kubernetes" } });
    expect([kube.code, kube.stderr]).toEqual([2, expect.stringContaining("kubernetes")]);
    const secret = await cli(["serve", "--master-key", "A".repeat(43)], { env: env() });
    expect(secret.code).toBe(2);
    expect(secret.stderr).toContain("--master-key");
    expect(secret.stderr).not.toContain("A".repeat(43));
    // With an identity provider configured, the development issuer mints nothing.
    for (const idp of <Record<string, string>[]>[{ TURNKEY_JWKS_URL: "https://sso.example.com/jwks" }, { TURNKEY_OIDC_DISCOVERY: "issuer", TURNKEY_JWT_ISSUER: "https://sso.example.com/realms/acme" }]) {
      const mint = await cli(["token", "--user", "alice"], { env: { ...env(), ...idp } });
      expect([mint.code, mint.stdout]).toEqual([2, ""]);
      expect(mint.stderr).toContain(Object.keys(idp)[0]!);
    }
  });

  test("operator commands set up a shared session, and a turn runs against the served process", async () => {
    const created = await cli(["sessions", "create", "--project", "demo", "--session", "ops", "--owner", "alice", "--share", "bob:edit"], { env: env() });
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ ownerId: "alice", collaborators: [{ userId: "bob", role: "edit" }] });

    const set = await cli(["credentials", "set", "--user", "bob", "--provider", "github"], { env: env(), stdin: JSON.stringify({ token: "ghp_cli_bob_token_123456", email: "bob@example.com" }) });
    expect(set.code).toBe(0);
    const list = await cli(["credentials", "list", "--user", "bob"], { env: env() });
    expect(list.stdout).toContain("github");
    expect(list.stdout).not.toContain("ghp_cli_bob_token_123456");
    const badJson = await cli(["credentials", "set", "--user", "bob", "--provider", "github"], { env: env(), stdin: "{" });
    expect(badJson.code).toBe(2);

    const token = (await cli(["token", "--user", "bob", "--name", "Bob"], { env: env() })).stdout.trim();
    expect(token.split(".")).toHaveLength(3);
    const res = await fetch(`${url}/api/projects/demo/agentic-sessions/ops/agui/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m1", role: "user", content: "hi" }] }),
    });
    const events = parseSse(await res.text());
    const text = events.filter((e) => e.type === "TEXT_MESSAGE_CONTENT").map((e) => e.delta).join("");
    expect(text).toContain("Hello, Bob");
    expect(text).toContain("github");
    expect(text).toContain("matches");
    expect(events.at(-1).type).toBe("RUN_FINISHED");
  });

  test("SIGTERM shuts the server down cleanly", async () => {
    const fresh = await startGatewayProcess({}, { command: [process.execPath, MAIN, "serve", "--port", "0"] });
    expect(await fresh.stop()).toBe(0);
  });
});
