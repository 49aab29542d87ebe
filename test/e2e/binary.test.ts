/**
 * The shipped artefact: `bun build --compile` makes one self-contained binary, which serves a
 * turn with its default runner (the bundled example, run as `turnkey example-runner`).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseSse } from "../helpers/gateway.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";

const root = resolve(import.meta.dir, "../..");
let dir: string;
let binary: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "turnkey-bin-"));
  binary = join(dir, "turnkey");
  const build = Bun.spawnSync([process.execPath, "build", "--compile", "--outfile", binary, join(root, "src/main.ts")], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the compiled binary prints its version and serves a turn with the bundled runner", async () => {
  const version = Bun.spawnSync([binary, "version"], { env: { PATH: process.env.PATH ?? "" }, cwd: dir });
  expect(version.stdout.toString()).toMatch(/^turnkey \d+\.\d+\.\d+/);

  const gw = await startGatewayProcess({ HOME: dir }, { command: [binary, "serve", "--port", "0"] });
  try {
    const env = { PATH: process.env.PATH ?? "", TURNKEY_DATA_DIR: gw.dataDir };
    const token = Bun.spawnSync([binary, "token", "--user", "alice", "--name", "Alice"], { env, cwd: dir }).stdout.toString().trim();
    expect((await gw.api("POST", "/api/projects/demo/agentic-sessions", { token, body: { name: "bin" } })).status).toBe(201);
    const res = await fetch(`${gw.url}/api/projects/demo/agentic-sessions/bin/agui/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "hi" }] }),
    });
    const events = parseSse(await res.text());
    expect(events.map((e) => e.delta ?? "").join("")).toContain("Hello, Alice!");
    expect(events.at(-1).type).toBe("RUN_FINISHED");
  } finally {
    expect(await gw.stop()).toBe(0);
  }
});
