/**
 * End to end: a gateway killed with SIGKILL mid-turn (no teardown runs) cleans up at its next
 * start (src/runner/turn-journal.ts): the orphaned runner, which still holds the sender's token in
 * its environment, is killed, and the turn directory with the token file is removed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { DevIssuer } from "../../src/identity/dev-issuer.ts";
import { processGroupAlive } from "../../src/runner/process-group.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { parseSse } from "../helpers/gateway.ts";

const BOB_GH = "ghp_crash_bob_333333333333333333333333333333";
const dir = mkdtempSync(join(tmpdir(), "turnkey-crash-"));
let orphan: number | undefined; // killed here if the test fails before recovery does it
afterAll(() => {
  if (orphan && processGroupAlive(orphan)) process.kill(-orphan, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});
const env = { TURNKEY_DATA_DIR: dir, TURNKEY_RUNNER_COMMAND: JSON.stringify([process.execPath, resolve(import.meta.dir, "../fixtures/runners/slow.ts")]) };

describe("crash recovery", () => {
  test("after a SIGKILL mid-turn, the next start kills the orphaned runner and removes its turn directory", async () => {
    const first = await startGatewayProcess(env);
    const issuer = await DevIssuer.open(loadConfig({ TURNKEY_DATA_DIR: dir }));
    const bob = await issuer.mint({ userId: "bob" });
    expect((await first.api("POST", "/api/projects/demo/agentic-sessions", { token: bob, body: { name: "s" } })).status).toBe(201);
    expect((await first.api("PUT", "/api/users/me/credentials/github", { token: bob, body: { token: BOB_GH } })).status).toBe(200);
    const res = await fetch(`${first.url}/api/projects/demo/agentic-sessions/s/agui/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${bob}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ messages: [{ id: "m", role: "user", content: "wait" }] }),
    });
    // Read until the runner reports its process group.
    const reader = res.body!.getReader();
    let text = "";
    let slow: { pgid: number } | undefined;
    while (!slow) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      slow = parseSse(text).find((e) => e.type === "CUSTOM" && e.name === "slow")?.value;
    }
    expect(slow).toBeDefined();
    orphan = slow!.pgid;
    const turnsDir = join(dir, "turns");
    const turnDirs = readdirSync(turnsDir).filter((n) => n.startsWith("turn-"));
    expect(turnDirs).toHaveLength(1);
    expect(existsSync(join(turnsDir, turnDirs[0]!, "github_token"))).toBe(true);

    await first.crash();
    await reader.cancel().catch(() => {});
    // No teardown ran: the runner and the sender's token file are still there.
    expect(processGroupAlive(slow!.pgid)).toBe(true);
    expect(existsSync(join(turnsDir, turnDirs[0]!))).toBe(true);

    const second = await startGatewayProcess(env);
    try {
      expect(processGroupAlive(slow!.pgid)).toBe(false);
      expect(existsSync(join(turnsDir, turnDirs[0]!))).toBe(false);
      expect(readdirSync(join(dir, "live-turns"))).toEqual([]);
      expect(second.log()).toContain("cleaned up turns left by an earlier gateway process");
      expect(second.log()).not.toContain(BOB_GH);
      // The crashed turn is ended where participants and auditors look.
      const stored = readFileSync(join(dir, "events", "demo", "s.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      expect(stored.at(-1).event).toMatchObject({ type: "RUN_ERROR", code: "gateway_restarted" });
      const audit = readFileSync(join(dir, "audit.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      const run = stored.at(-1).runId;
      expect(audit.filter((l) => l.run === run).map((l) => l.event)).toEqual(["turn.start", "turn.end"]);
    } finally {
      await second.stop();
    }
  }, 60_000);
});

describe("one gateway per data dir", () => {
  test("a second gateway on a data dir in use refuses to start and touches none of the first one's turns", async () => {
    const shared = mkdtempSync(join(tmpdir(), "turnkey-lock-"));
    const env2 = { ...env, TURNKEY_DATA_DIR: shared };
    const first = await startGatewayProcess(env2);
    try {
      const issuer = await DevIssuer.open(loadConfig({ TURNKEY_DATA_DIR: shared }));
      const bob = await issuer.mint({ userId: "bob" });
      expect((await first.api("POST", "/api/projects/demo/agentic-sessions", { token: bob, body: { name: "s" } })).status).toBe(201);
      expect((await first.api("POST", "/api/projects/demo/agentic-sessions/s/agui/run", { token: bob, body: { messages: [{ id: "m", role: "user", content: "wait" }] } })).status).toBe(202);
      const journal = () => (existsSync(join(shared, "live-turns")) ? readdirSync(join(shared, "live-turns")) : []);
      for (let end = Date.now() + 10_000; journal().length === 0 && Date.now() < end; ) await Bun.sleep(20);
      const journalled = journal();
      expect(journalled).toHaveLength(1);
      await expect(startGatewayProcess(env2, { startTimeoutMs: 10_000 })).rejects.toThrow(/TURNKEY_DATA_DIR/);
      // The first gateway's turn is untouched: still journalled, still running.
      expect(journal()).toEqual(journalled);
      const r = await first.api("POST", "/api/projects/demo/agentic-sessions/s/agui/interrupt", { token: bob, body: {} });
      expect(r.status).toBe(202);
    } finally {
      await first.stop();
      rmSync(shared, { recursive: true, force: true });
    }
  }, 60_000);
});
