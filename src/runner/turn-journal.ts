/**
 * A journal of spawned turns, so a gateway that was killed (SIGKILL, OOM, power) cleans up after
 * itself at the next start (DESIGN §7 rule 2: nothing of a turn outlives it). Without it a crash
 * left the sender's credentials in the turn directory and the runner running with them in its
 * environment (found by a break-it review).
 *
 * One file per live turn in `<dataDir>/live-turns/` (0700 directory, 0600 files, the gateway's
 * own): `{turnDir, uid?}`, written right after the turn directory is made and removed once its
 * teardown ended. `recover()` at start, before any turn runs (and after the data dir is locked:
 * src/store/data-dir-lock.ts), undoes every entry left behind (malformed entries, or ones naming a
 * directory outside the turns root, are dropped):
 * - with a pooled runner uid: SIGKILL every process of that uid (`killUidProcesses`) and remove
 *   its files in the shared temp dirs (`removeUidLeftovers`), as teardown does: the next turn
 *   with that uid, maybe another user's, must not find the previous sender's token in `/tmp`
 *   (found by a second break-it review);
 * - without: SIGKILL every process whose environment names that turn's git config
 *   (`GIT_CONFIG_GLOBAL=<turnDir>/gitconfig`, unique per turn: the directory name is random),
 *   repeated until none is left (a runner that rewrites its own environment escapes this: the
 *   default mode trusts runners, see README "Isolation");
 * - then removes the turn directory and the entry, and reports the run (`onRecovered`) so the
 *   gateway can end it where participants and auditors look: a RUN_ERROR `gateway_restarted` in the
 *   session's stored events and a `turn.end` audit record (a crashed turn otherwise never ended).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { TURN_FILES } from "../credentials/turn-environment.ts";
import { scanProcesses } from "./process-group.ts";
import { removeTurnDir } from "./turn-dir.ts";
import { killUidProcesses, removeUidLeftovers } from "./uid-processes.ts";
import { waitUntil } from "./wait.ts";
import { isDns1123Label } from "../names.ts";

/** What the journal keeps about a live turn. */
export interface JournalEntry {
  turnDir: string;
  /** The pooled runner uid, when the turn has one. */
  uid?: number;
  /** Which run it was, so recovery can end it in the session's history and the audit log. */
  run?: { project: string; session: string; runId: string; userId: string };
}

/** The environment entry that marks a turn's processes (see the module doc). */
export const turnMarker = (turnDir: string) => `GIT_CONFIG_GLOBAL=${join(turnDir, TURN_FILES.gitconfig)}`;

/** PIDs of the processes whose initial environment holds `marker` exactly (Linux `/proc/<pid>/environ`). */
export function processesWithEnv(marker: string): number[] {
  const needle = `\0${marker}\0`;
  return scanProcesses("environ", (text) => `\0${text}`.includes(needle)) ?? [];
}

/** The journal in `dir` (module doc). */
export class TurnJournal {
  readonly #dir: string;
  readonly #turnsRoot: string | undefined;

  /**
   * @param dir e.g. `<dataDir>/live-turns`; created 0700 on first use.
   * @param turnsRoot where turn directories are made (config `turnsDir`): `recover` removes only
   *   directories directly under it, so an entry cannot point it elsewhere.
   */
  constructor(dir: string, turnsRoot?: string) {
    this.#dir = dir;
    this.#turnsRoot = turnsRoot;
  }

  /**
   * Record a live turn. Synchronous, so the entry exists before the runner is spawned.
   * @returns the entry's ID (the turn directory's name) for `remove`.
   * @throws fs errors (the caller fails the turn: a turn that cannot be journalled could not be recovered).
   */
  record(entry: JournalEntry): string {
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    const id = basename(entry.turnDir);
    writeFileSync(join(this.#dir, `${id}.json`), JSON.stringify(entry), { mode: 0o600 });
    return id;
  }

  /** Forget a turn whose teardown ended. Never throws. */
  remove(id: string): void {
    rmSync(join(this.#dir, `${id}.json`), { force: true });
  }

  /**
   * Undo every turn a previous gateway process left (module doc). Call once at start, before any
   * turn runs. Never rejects: an entry that cannot be read is removed, a step that fails is
   * logged at error and the entry kept for the next start.
   * @returns how many entries were recovered.
   */
  async recover(log: { warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void }, onRecovered?: (run: NonNullable<JournalEntry["run"]>) => void): Promise<number> {
    let names: string[];
    try {
      names = readdirSync(this.#dir).filter((n) => n.endsWith(".json"));
    } catch {
      return 0;
    }
    let recovered = 0;
    for (const name of names) {
      const file = join(this.#dir, name);
      let entry: JournalEntry;
      try {
        entry = JSON.parse(readFileSync(file, "utf8")) as JournalEntry;
        if (typeof entry.turnDir !== "string" || !basename(entry.turnDir).startsWith("turn-")) throw new Error("malformed entry");
        if (this.#turnsRoot !== undefined && resolve(dirname(entry.turnDir)) !== resolve(this.#turnsRoot)) throw new Error("turn directory outside the turns root");
        if (entry.uid !== undefined && !(Number.isInteger(entry.uid) && entry.uid > 0)) throw new Error("malformed uid");
      } catch {
        rmSync(file, { force: true });
        continue;
      }
      try {
        const killed = entry.uid !== undefined ? await killUidProcesses(entry.uid) : await killMarked(turnMarker(entry.turnDir));
        if (!killed) throw new Error("processes of the turn are still alive");
        await removeTurnDir(entry.turnDir);
        if (entry.uid !== undefined) await removeUidLeftovers(entry.uid);
        rmSync(file, { force: true });
        recovered++;
        const r = entry.run;
        // Names become file paths in the event log: only well-formed ones are reported.
        if (r && isDns1123Label(r.project) && isDns1123Label(r.session) && typeof r.runId === "string" && /^[^/\s]{1,128}$/.test(r.runId) && typeof r.userId === "string")
          onRecovered?.(r);
      } catch (err) {
        log.error({ turnDir: entry.turnDir, err: (err as Error).message }, "could not clean up a turn left by an earlier gateway process");
      }
    }
    if (recovered > 0) log.warn({ turns: recovered }, "cleaned up turns left by an earlier gateway process (runners killed, turn directories removed)");
    return recovered;
  }
}

/** SIGKILL every process carrying `marker` until none is left (up to 2 s). @returns true once none is. */
async function killMarked(marker: string): Promise<boolean> {
  const until = Date.now() + 2000;
  for (;;) {
    const pids = processesWithEnv(marker);
    if (pids.length === 0) return true;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    if (Date.now() >= until) return processesWithEnv(marker).length === 0;
    await waitUntil(20, []);
  }
}
