import { describe, expect, test } from "bun:test";
import { killProcessGroup, processGroupAlive, processGroupMembers, signalProcessGroup, spawnProcessGroup } from "../../src/runner/process-group.ts";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
const waitFor = async (cond: () => boolean, ms = 3000) => {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await Bun.sleep(10);
  return cond();
};

describe("process groups", () => {
  test("the child leads a new group; SIGTERM takes the whole group down", async () => {
    const child = spawnProcessGroup(["sh", "-c", "sleep 300 & sleep 300 & wait"], { env, cwd: "/tmp", stdio: "ignore" });
    const pgid = child.pid!;
    expect(await waitFor(() => (processGroupMembers(pgid)?.length ?? 0) >= 3)).toBe(true);
    expect(processGroupMembers(pgid)).toContain(pgid);
    expect(await killProcessGroup(pgid, 2000)).toBe("terminated");
    expect(processGroupMembers(pgid)).toEqual([]);
    expect(processGroupAlive(pgid)).toBe(false);
  });

  test("SIGKILL after graceMs when SIGTERM is ignored", async () => {
    const child = spawnProcessGroup(["sh", "-c", "trap '' TERM; sleep 300 & trap '' TERM; while :; do sleep 1; done"], { env, cwd: "/tmp", stdio: "ignore" });
    const pgid = child.pid!;
    expect(await waitFor(() => (processGroupMembers(pgid)?.length ?? 0) >= 2)).toBe(true);
    const started = Date.now();
    // `sleep` children do not ignore TERM, but the shell does: the group only empties on SIGKILL.
    expect(await killProcessGroup(pgid, 200)).toBe("killed");
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(processGroupMembers(pgid)).toEqual([]);
  });

  test("an already-empty group is reported gone", async () => {
    const child = spawnProcessGroup(["true"], { env, cwd: "/tmp", stdio: "ignore" });
    await new Promise((r) => child.on("exit", r));
    expect(await waitFor(() => !processGroupAlive(child.pid!))).toBe(true);
    expect(await killProcessGroup(child.pid!, 100)).toBe("gone");
    expect(signalProcessGroup(child.pid!, 0)).toBe(false);
  });

  test("refuses to signal group 0, 1 or negative IDs", () => {
    for (const bad of [0, 1, -5]) expect(() => signalProcessGroup(bad, "SIGTERM")).toThrow(RangeError);
  });
});
