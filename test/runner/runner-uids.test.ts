/**
 * Per-turn runner uids (src/runner/runner-uids.ts, uid-processes.ts, the config settings): the
 * range and isolation settings, the pool's decisions, and, as root, what the kernel does: Bun's
 * spawn with uid/gid drops supplementary groups, a uid sweep kills a process that left its group,
 * leftovers are removed by owner, and a gateway that cannot switch users refuses to start.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, chownSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadConfig, parseRunnerUids } from "../../src/config.ts";
import { ConfigError } from "../../src/errors.ts";
import { openRunnerUidPool, RunnerUidPool } from "../../src/runner/runner-uids.ts";
import { killUidProcesses, removeUidLeftovers, uidProcesses } from "../../src/runner/uid-processes.ts";

const isRoot = process.getuid?.() === 0;
const ROOT = resolve(import.meta.dir, "../..");
const UID = 250_000 + (process.pid % 10_000) * 2; // [250000, 270000): ours alone, disjoint from runner-isolation's band

describe("parseRunnerUids", () => {
  test.each([
    ["200000-200999", { first: 200000, last: 200999 }],
    ["200000", { first: 200000, last: 200000 }],
    [" 7-7 ", { first: 7, last: 7 }],
    [undefined, undefined],
  ] as const)("%p → %p", (raw, want) => {
    expect(parseRunnerUids(raw)).toEqual(want);
  });

  test.each(["0-10", "10-5", "abc", "1-2-3", "-5", "4294967295"])("%p is refused", (raw) => {
    expect(() => parseRunnerUids(raw)).toThrow(ConfigError);
  });
});

describe("loadConfig: isolation settings", () => {
  const data = resolve("/srv/turnkey-data");
  test.each([
    [{ TURNKEY_RUNNER_UIDS: "0-10" }, "TURNKEY_RUNNER_UIDS"],
    [{ TURNKEY_RUNNER_UIDS: "300-200" }, "TURNKEY_RUNNER_UIDS"],
    [{ TURNKEY_RUNNER_UIDS: "2000 3000" }, "TURNKEY_RUNNER_UIDS"],
    [{ TURNKEY_RUNNER_UIDS: "200000-200999", TURNKEY_RUNNER_GID: "0" }, "TURNKEY_RUNNER_GID"],
    [{ TURNKEY_RUNNER_UIDS: "200000-200999", TURNKEY_TURNS_DIR: `${data}/turns` }, "TURNKEY_TURNS_DIR"],
    [{ TURNKEY_RUNNER_UIDS: "200000-200999", TURNKEY_TURNS_DIR: data }, "TURNKEY_TURNS_DIR"],
  ] as const)("%p is refused naming %s", (env, setting) => {
    try {
      loadConfig({ TURNKEY_DATA_DIR: data, ...env });
      throw new Error("expected ConfigError");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).setting).toBe(setting);
    }
  });

  test.each([
    [{}, `${data}/turns`],
    [{ TURNKEY_RUNNER_UIDS: "200000-200999" }, join(tmpdir(), `turnkey-turns-${process.getuid!()}`)],
    [{ TURNKEY_RUNNER_UIDS: "200000", TURNKEY_TURNS_DIR: "/var/lib/turnkey-turns" }, "/var/lib/turnkey-turns"],
    [{ TURNKEY_RUNNER_UIDS: "200000", TURNKEY_TURNS_DIR: `${data}-turns` }, `${data}-turns`],
  ] as const)("%p: turns dir %s", (env, want) => {
    expect(loadConfig({ TURNKEY_DATA_DIR: data, ...env }).turnsDir).toBe(want);
  });
});

describe("RunnerUidPool", () => {
  const pool = (busy: number[] = [], gid?: number) => new RunnerUidPool({ first: 100, last: 102, inUse: (u) => busy.includes(u), ...(gid ? { gid } : {}) });

  test("hands out the lowest free uid, gid = uid, until exhausted; a released uid is reused first", () => {
    const p = pool();
    expect([p.acquire(), p.acquire(), p.acquire(), p.acquire()]).toEqual([{ uid: 100, gid: 100 }, { uid: 101, gid: 101 }, { uid: 102, gid: 102 }, undefined]);
    expect([p.size, p.taken]).toEqual([3, 3]);
    p.release({ uid: 101, gid: 101 });
    expect(p.acquire()).toEqual({ uid: 101, gid: 101 });
  });

  test.each([
    [[], undefined, { uid: 100, gid: 100 }],
    [[100], undefined, { uid: 101, gid: 101 }],
    [[100, 101, 102], undefined, undefined],
    [[], 5000, { uid: 100, gid: 5000 }],
  ] as const)("processes of %p, gid %p → %p", (busy, gid, want) => {
    expect(pool([...busy], gid).acquire()).toEqual(want);
  });
});

describe("openRunnerUidPool: the range must be no local account's", () => {
  const dir = mkdtempSync(join(tmpdir(), "turnkey-accounts-"));
  writeFileSync(join(dir, "passwd"), "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
  writeFileSync(join(dir, "group"), "root:x:0:\ndocker:x:1500:alice\n");
  const files = { passwd: join(dir, "passwd"), group: join(dir, "group") };
  const cfg = { turnsDir: "/nonexistent", dataDir: "/nonexistent", runnerCommand: ["true"] };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each([
    ["900-1100", undefined, /local user alice:1000/],
    ["1400-1600", undefined, /local group docker:1500/],
  ] as const)("%p (gid %p) is refused", async (runnerUids, runnerGid, message) => {
    const err = await openRunnerUidPool({ ...cfg, runnerUids, ...(runnerGid ? { runnerGid } : {}) }, files).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect([err.setting, err.message]).toEqual(["TURNKEY_RUNNER_UIDS", expect.stringMatching(message)]);
  });

  test("a shared TURNKEY_RUNNER_GID makes the group file irrelevant; unset uids → no pool", async () => {
    // Passes the account checks, then fails later (the probe or the turns dir): not on accounts.
    const err = await openRunnerUidPool({ ...cfg, runnerUids: "1400-1600", runnerGid: 77777 }, files).catch((e) => e);
    expect(String(err?.message)).not.toMatch(/local (user|group)/);
    expect(await openRunnerUidPool({ ...cfg, runnerUids: undefined }, files)).toBeUndefined();
  });
});

describe.skipIf(!isRoot)("as root", () => {
  test("Bun's spawn with uid/gid drops the parent's supplementary groups", () => {
    const script = `const { spawnProcessGroup } = await import(${JSON.stringify(join(ROOT, "src/runner/process-group.ts"))});
      const p = spawnProcessGroup(["/bin/sh", "-c", "grep -E '^(Uid|Gid|Groups):' /proc/self/status"], { env: {}, cwd: "/", uid: ${UID}, gid: ${UID}, stdio: ["ignore", "pipe", "inherit"] });
      let out = ""; p.stdout.on("data", (c) => (out += c)); p.on("close", () => console.log(out));`;
    const r = spawnSync("setpriv", ["--groups", "4,27", process.execPath, "-e", script], { encoding: "utf8", cwd: ROOT });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Uid:\\s+${UID}\\s+${UID}\\s+${UID}\\s+${UID}$`, "m"));
    expect(r.stdout).toMatch(new RegExp(`^Gid:\\s+${UID}\\s+${UID}\\s+${UID}\\s+${UID}$`, "m"));
    expect(r.stdout).toMatch(/^Groups:[ \t]*$/m);
  });

  test("killUidProcesses kills every process of the uid, in whatever session; removeUidLeftovers removes only its files", async () => {
    const p = spawn("setsid", ["sleep", "300"], { uid: UID + 1, gid: UID + 1, detached: true, stdio: "ignore" });
    // `setsid` forks when it is a group leader and its parent half exits: wait until only `sleep`
    // is left (a /proc scan racing that exit can see nobody for a moment).
    const onlySleep = () => {
      const pids = uidProcesses(UID + 1) ?? [];
      try {
        return pids.length === 1 && readFileSync(`/proc/${pids[0]}/comm`, "utf8").trim() === "sleep";
      } catch {
        return false; // exited between the scan and the read
      }
    };
    const until = Date.now() + 5000;
    while (!onlySleep() && Date.now() < until) await Bun.sleep(10);
    expect(onlySleep()).toBe(true);
    expect(await killUidProcesses(UID + 1)).toBe(true);
    expect(uidProcesses(UID + 1)).toEqual([]);
    p.unref();

    const dir = mkdtempSync(join(tmpdir(), "turnkey-leftovers-"));
    try {
      for (const [name, owner] of [["mine", UID + 1], ["other", UID], ["gateway", 0]] as const) {
        mkdirSync(join(dir, name));
        writeFileSync(join(dir, name, "f"), "x");
        chownSync(join(dir, name), owner, owner);
      }
      expect(await removeUidLeftovers(UID + 1, [dir])).toBe(1);
      expect(["mine", "other", "gateway"].map((n) => existsSync(join(dir, n)))).toEqual([false, true, true]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await expect(killUidProcesses(0)).rejects.toThrow(RangeError);
  });

  test("killUidProcesses catches a process that keeps re-forking (each copy forks and exits at once)", async () => {
    // A generation lives only long enough to fork the next; a scan-then-kill loop can miss it.
    // Each generation appends a byte to a beat file: a /proc scan under load can miss every
    // short-lived generation (CI saw that), the file cannot.
    const dir = mkdtempSync(join(tmpdir(), "turnkey-hop-"));
    const beat = join(dir, "beat");
    writeFileSync(beat, "");
    chownSync(dir, UID + 1, UID + 1); // reachable by the runner uid only
    chownSync(beat, UID + 1, UID + 1);
    const size = () => Bun.file(beat).size;
    try {
      const hop = `h() { printf . >> '${beat}'; ( sleep 0.001; h ) & exit 0; }; h`;
      spawn("/bin/sh", ["-c", hop], { uid: UID + 1, gid: UID + 1, detached: true, stdio: "ignore" }).unref();
      const until = Date.now() + 10_000;
      while (size() < 20 && Date.now() < until) await Bun.sleep(10);
      expect(size()).toBeGreaterThanOrEqual(20); // it has hopped through 20 generations
      expect(await killUidProcesses(UID + 1)).toBe(true);
      const after = size();
      await Bun.sleep(300);
      expect(size()).toBe(after); // no generation survived to write again
      expect(uidProcesses(UID + 1)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a gateway that cannot switch users refuses to start, naming TURNKEY_RUNNER_UIDS", () => {
    const script = `const { openRunnerUidPool } = await import(${JSON.stringify(join(ROOT, "src/runner/runner-uids.ts"))});
      try { await openRunnerUidPool({ runnerUids: "${UID}", turnsDir: "/tmp/unused", dataDir: "/tmp/unused", runnerCommand: ["true"] }); console.log("started"); }
      catch (err) { console.log(err.name, err.setting); }`;
    const r = spawnSync("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", process.execPath, "-e", script], { encoding: "utf8", cwd: "/", env: { PATH: process.env.PATH, HOME: "/tmp" } });
    expect(r.stdout.trim()).toBe("ConfigError TURNKEY_RUNNER_UIDS");
  });

  test.each([
    ["SETUID,SETGID,CHOWN,DAC_OVERRIDE", "ConfigError TURNKEY_RUNNER_UIDS needs root with CAP_KILL"],
    ["SETUID,SETGID,CHOWN,KILL", "ConfigError TURNKEY_RUNNER_UIDS needs root with CAP_DAC_OVERRIDE"],
    ["SETUID,SETGID,DAC_OVERRIDE,KILL", "ConfigError TURNKEY_RUNNER_UIDS needs root with CAP_CHOWN"],
    ["SETUID,SETGID,CHOWN,DAC_OVERRIDE,KILL", "started"],
  ])("root with only %s: %s", (caps, want) => {
    const data = mkdtempSync(join(tmpdir(), "turnkey-caps-"));
    try {
      const script = `const { openRunnerUidPool } = await import(${JSON.stringify(join(ROOT, "src/runner/runner-uids.ts"))});
        try { await openRunnerUidPool({ runnerUids: "${UID}", turnsDir: ${JSON.stringify(join(data + "-turns"))}, dataDir: ${JSON.stringify(data)}, runnerCommand: ["/bin/true"] }); console.log("started"); }
        catch (err) { console.log(err.name, err.setting, /needs root with CAP_\\w+/.exec(err.message)?.[0] ?? err.message); }`;
      const bounding = ["-all", ...caps.split(",").map((c) => `+${c.toLowerCase()}`)].join(",");
      const r = spawnSync("setpriv", ["--bounding-set", bounding, "--inh-caps", "-all", process.execPath, "-e", script], { encoding: "utf8", cwd: "/", env: { PATH: process.env.PATH, HOME: "/tmp" } });
      expect(r.stdout.trim()).toBe(want);
    } finally {
      rmSync(data, { recursive: true, force: true });
      rmSync(data + "-turns", { recursive: true, force: true });
    }
  });
});
