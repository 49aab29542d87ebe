/**
 * One gateway per data dir. A second `turnkey serve` on the same data dir would recover the first
 * one's live turns as crash leftovers (killing its runners, deleting their turn directories)
 * before failing on the port (found by a break-it review), and two gateways there would each keep
 * their own active-run map. So `serve` takes `<dataDir>/gateway.pid` (created exclusively, 0600)
 * before it touches anything else, and gives it back when it stops.
 *
 * A lock whose process is gone (a crash, SIGKILL) is stale and taken over; that is what lets the
 * next start clean up after a crash. The operator commands (`turnkey sessions`, …) do not lock.
 */
import { openSync, readFileSync, rmSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";

/** The lock file's name in the data dir. */
export const LOCK_FILE = "gateway.pid";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, another user's
  }
};

/**
 * Take the data dir for this process.
 * @returns a function that releases it (idempotent; only removes the lock if it is still ours).
 * @throws ConfigError (TURNKEY_DATA_DIR) when a live process holds it.
 */
export function lockDataDir(dataDir: string, pid = process.pid): () => void {
  const file = join(dataDir, LOCK_FILE);
  const token = `${pid} ${Date.now()}-${Math.random().toString(36).slice(2)}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, token);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
      const holder = Number(readFileSync(file, "utf8").split(" ")[0]);
      if (Number.isInteger(holder) && holder > 0 && alive(holder))
        throw new ConfigError("TURNKEY_DATA_DIR", `another gateway (pid ${holder}) uses ${dataDir}; stop it first, or remove ${file} if that process is no gateway`);
      rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    try {
      if (readFileSync(file, "utf8") === token) rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
}
