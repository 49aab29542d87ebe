/** TurnJournal (src/runner/turn-journal.ts): entries, the environment marker, and recovery. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processesWithEnv, TurnJournal, turnMarker } from "../../src/runner/turn-journal.ts";

let root: string;
beforeEach(() => (root = mkdtempSync(join(tmpdir(), "turnkey-journal-"))));
afterEach(() => rmSync(root, { recursive: true, force: true }));
const quiet = { warn: () => {}, error: () => {} };

/** A detached `sleep` carrying `env`, as an orphaned runner would. */
function orphan(env: Record<string, string>) {
  const p = spawn("sleep", ["300"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, detached: true, stdio: "ignore" });
  p.unref();
  return p.pid!;
}
/** Wait (up to 5 s) until `pid` has exec'd and shows `marker` in its environment. */
async function execd(pid: number, marker: string) {
  for (let end = Date.now() + 5000; !processesWithEnv(marker).includes(pid) && Date.now() < end; ) await Bun.sleep(10);
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
};

describe("TurnJournal", () => {
  test("record and remove", () => {
    const j = new TurnJournal(join(root, "live-turns"));
    const id = j.record({ turnDir: join(root, "turns", "turn-abc123") });
    expect(id).toBe("turn-abc123");
    expect(readdirSync(join(root, "live-turns"))).toEqual(["turn-abc123.json"]);
    j.remove(id);
    expect(readdirSync(join(root, "live-turns"))).toEqual([]);
  });

  test("the marker matches a whole environment entry only", async () => {
    const dir = join(root, "turns", "turn-aaa111");
    const mine = orphan({ GIT_CONFIG_GLOBAL: join(dir, "gitconfig") });
    const lookalike = orphan({ GIT_CONFIG_GLOBAL: join(dir + "2", "gitconfig") });
    try {
      await execd(mine, turnMarker(dir));
      await execd(lookalike, turnMarker(dir + "2"));
      expect(processesWithEnv(turnMarker(dir))).toEqual([mine]);
    } finally {
      for (const pid of [mine, lookalike]) process.kill(pid, "SIGKILL");
    }
  });

  test("recover kills the turn's processes, removes its directory and entry; malformed entries are dropped; others are untouched", async () => {
    const turns = join(root, "turns");
    const left = join(turns, "turn-left01");
    mkdirSync(left, { recursive: true });
    writeFileSync(join(left, "github_token"), "ghp_x");
    const j = new TurnJournal(join(root, "live-turns"));
    j.record({ turnDir: left });
    writeFileSync(join(root, "live-turns", "junk.json"), "{not json");
    writeFileSync(join(root, "live-turns", "outside.json"), JSON.stringify({ turnDir: "/etc" }));
    const runner = orphan({ GIT_CONFIG_GLOBAL: join(left, "gitconfig") });
    const bystander = orphan({ GIT_CONFIG_GLOBAL: join(turns, "turn-other1", "gitconfig") });
    try {
      await execd(runner, turnMarker(left));
      await execd(bystander, turnMarker(join(turns, "turn-other1")));
      const warned: object[] = [];
      expect(await j.recover({ warn: (o) => void warned.push(o), error: () => {} })).toBe(1);
      expect([alive(runner), alive(bystander)]).toEqual([false, true]);
      expect(existsSync(left)).toBe(false);
      expect(existsSync("/etc")).toBe(true);
      expect(readdirSync(join(root, "live-turns"))).toEqual([]);
      expect(warned).toEqual([{ turns: 1 }]);
      expect(await j.recover(quiet)).toBe(0);
    } finally {
      for (const pid of [runner, bystander]) if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  });

  test("entries naming a directory outside the turns root, or a malformed uid, are dropped untouched", async () => {
    const turns = join(root, "turns");
    const outside = join(root, "elsewhere", "turn-victim");
    mkdirSync(outside, { recursive: true });
    const j = new TurnJournal(join(root, "live-turns"), turns);
    j.record({ turnDir: outside });
    writeFileSync(join(root, "live-turns", "bad-uid.json"), JSON.stringify({ turnDir: join(turns, "turn-x"), uid: "1000" }));
    expect(await j.recover(quiet)).toBe(0);
    expect(existsSync(outside)).toBe(true);
    expect(readdirSync(join(root, "live-turns"))).toEqual([]);
  });

  test("no journal directory yet → nothing to recover", async () => {
    expect(await new TurnJournal(join(root, "none")).recover(quiet)).toBe(0);
  });
});

describe.skipIf(process.getuid?.() !== 0)("TurnJournal with a pooled runner uid (root)", () => {
  const UID = 270_000 + (process.pid % 5_000); // [270000, 275000): disjoint from the other suites' bands
  test("recover sweeps the uid's processes and its files in the shared temp dirs, as teardown does", async () => {
    const turnDir = join(root, "turns", "turn-uid001");
    mkdirSync(turnDir, { recursive: true });
    const stash = join(tmpdir(), `turnkey-journal-stash-${UID}`);
    const p = spawn("/bin/sh", ["-c", `echo ghp_previous_sender > ${stash}; exec sleep 300`], { uid: UID, gid: UID, detached: true, stdio: "ignore" });
    p.unref();
    for (let end = Date.now() + 5000; !existsSync(stash) && Date.now() < end; ) await Bun.sleep(10);
    expect(existsSync(stash)).toBe(true);
    const j = new TurnJournal(join(root, "live-turns"));
    j.record({ turnDir, uid: UID });
    expect(await j.recover(quiet)).toBe(1);
    expect([alive(p.pid!), existsSync(stash), existsSync(turnDir)]).toEqual([false, false, false]);
  });
});
