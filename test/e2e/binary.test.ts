/**
 * The shipped artefact: `bun build --compile` makes one self-contained binary, which serves a
 * turn with its default runner (the bundled example, run as `turnkey example-runner`).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseSse } from "../helpers/gateway.ts";

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
  const env = { PATH: process.env.PATH ?? "", HOME: dir, TURNKEY_DATA_DIR: join(dir, "data") };
  const version = Bun.spawnSync([binary, "version"], { env, cwd: dir });
  expect(version.stdout.toString()).toMatch(/^turnkey \d+\.\d+\.\d+/);

  const server = Bun.spawn([binary, "serve", "--port", "0"], { env, cwd: dir, stdout: "ignore", stderr: "pipe" });
  try {
    const reader = server.stderr.getReader();
    let log = "";
    let url = "";
    while (!url) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited: ${log}`);
      log += new TextDecoder().decode(value);
      url = /"url":"(http:[^"]+)"/.exec(log)?.[1] ?? "";
    }
    void (async () => {
      while (!(await reader.read()).done);
    })().catch(() => {});
    const token = Bun.spawnSync([binary, "token", "--user", "alice", "--name", "Alice"], { env, cwd: dir }).stdout.toString().trim();
    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    expect((await fetch(`${url}/api/projects/demo/agentic-sessions`, { method: "POST", headers: auth, body: JSON.stringify({ name: "bin" }) })).status).toBe(201);
    const res = await fetch(`${url}/api/projects/demo/agentic-sessions/bin/agui/run`, {
      method: "POST",
      headers: { ...auth, accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "hi" }] }),
    });
    const events = parseSse(await res.text());
    expect(events.map((e) => e.delta ?? "").join("")).toContain("Hello, Alice!");
    expect(events.at(-1).type).toBe("RUN_FINISHED");
  } finally {
    server.kill("SIGTERM");
    await server.exited;
  }
});
