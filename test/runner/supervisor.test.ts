import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processGroupMembers } from "../../src/runner/process-group.ts";
import { makeContext, SECRETS } from "./context.ts";
import { custom, runTurn, supervisor, text } from "./harness.ts";

let root: string;
let turnsRoot: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "turnkey-sup-"));
  turnsRoot = join(root, "turns");
});
afterAll(() => rm(root, { recursive: true, force: true }));
afterEach(() => {
  // Every turn directory is gone once execute() resolves.
  if (existsSync(turnsRoot)) expect(readdirSync(turnsRoot)).toEqual([]);
});

const ALL_SECRETS = Object.values(SECRETS);
const noSecrets = (value: unknown) => {
  const s = JSON.stringify(value);
  for (const secret of ALL_SECRETS) expect(s).not.toContain(secret);
};
const alive = (pid: number) => {
  try {
    const stat = require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8") as string;
    return !/^\S+ \(.*\) [ZX] /.test(stat);
  } catch {
    return false;
  }
};

describe("LocalRunnerSupervisor: streaming and scrubbing", () => {
  test("events are streamed, secrets scrubbed, stream shape kept, turn dir private and removed", async () => {
    const { sup, logs } = supervisor(turnsRoot, "echo-env");
    const r = await runTurn(sup, makeContext({}, { fixture: { listFiles: true } }));
    expect(r.outcome.status).toBe("finished");
    expect(r.types[0]).toBe("RUN_STARTED");
    expect(r.types.at(-1)).toBe("RUN_FINISHED");
    expect(r.types.filter((t) => t === "RUN_FINISHED" || t === "RUN_ERROR")).toHaveLength(1);
    const t = text(r.events);
    expect(t).toContain("GITHUB_TOKEN=[REDACTED]");
    expect(t).toContain("TURNKEY_TURN_TOKEN=[REDACTED]");
    expect(t).toContain("CURRENT_USER_ID=alice");
    expect(t).toContain("JIRA_URL=https://jira.example.com");
    noSecrets(r.events);
    noSecrets(logs);
    const files = custom<{ cwd: string; files: { name: string; mode: string }[] }>(r.events, "turn-files")!;
    expect(files.cwd.startsWith(turnsRoot + "/turn-")).toBe(true);
    expect(Object.fromEntries(files.files.map((f) => [f.name, f.mode]))).toMatchObject({
      github_token: "600", gitlab_token: "600", "google_credentials.json": "600", gitconfig: "600",
    });
    expect(existsSync(files.cwd)).toBe(false);
  });

  test("a secret split across stdout chunks, base64 and JSON-escaped forms are scrubbed", async () => {
    const { sup } = supervisor(turnsRoot, "echo-env");
    const r = await runTurn(sup, makeContext({}, { fixture: { split: true, encodings: true, vars: ["GITHUB_TOKEN"] } }));
    expect(r.outcome.status).toBe("finished");
    expect(text(r.events)).toContain("GITHUB_TOKEN=[REDACTED]");
    expect(text(r.events)).toContain("base64=[REDACTED]");
    noSecrets(r.events);
    expect(JSON.stringify(r.events)).not.toContain(Buffer.from(SECRETS.github).toString("base64").slice(0, 20));
  });

  test("the gateway's environment does not reach the runner; secrets never enter process.env", async () => {
    const { sup } = supervisor(turnsRoot, "leak-check");
    const r = await runTurn(sup, makeContext());
    const v = custom<{ leaked: string[]; envNames: string[]; home: string }>(r.events, "leak-check")!;
    expect(v.leaked).toEqual([]);
    expect(text(r.events)).toBe("leak-check: clean");
    expect(v.home.startsWith(turnsRoot)).toBe(true);
    expect(v.envNames).not.toContain("TURNKEY_MASTER_KEY");
    noSecrets(process.env);
  });

  test("protocol edge cases: SSE framing, comments, invalid lines, no RUN_STARTED, events after the terminal one", async () => {
    const { sup, logs } = supervisor(turnsRoot, "script");
    const lines = [
      ": a comment",
      "event: message",
      `data: {"type":"TEXT_MESSAGE_START","messageId":"m","role":"assistant"}`,
      "",
      "not json at all " + SECRETS.github,
      `{"type":"NOT_AN_EVENT"}`,
      `{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"hi"}`,
      `{"type":"RUN_FINISHED","threadId":"{threadId}","runId":"{runId}"}`,
      `{"type":"TEXT_MESSAGE_END","messageId":"m"}`,
    ];
    const r = await runTurn(sup, makeContext({}, { fixture: { lines, bigLineBytes: 2 * 1024 * 1024 } }));
    expect(r.types).toEqual(["RUN_STARTED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "RUN_FINISHED"]);
    expect(r.outcome.status).toBe("finished");
    const warns = logs.filter((l) => l.level === "warn").map((l) => l.msg);
    expect(warns).toContain("dropped runner output line over the size limit");
    expect(warns.filter((m) => m === "dropped invalid runner output line")).toHaveLength(2);
    noSecrets(logs);
  });

  test("a line of JSON nested 200 000 deep is dropped as invalid; the gateway (this process) survives and the turn goes on", async () => {
    const { sup, logs } = supervisor(turnsRoot, "script");
    const deep = `{"type":"CUSTOM","name":"deep","value":${"[".repeat(200_000)}${"]".repeat(200_000)}}`;
    const lines = [deep, `{"type":"RUN_FINISHED","threadId":"{threadId}","runId":"{runId}"}`];
    const r = await runTurn(sup, makeContext({}, { fixture: { lines } }));
    expect(r.types).toEqual(["RUN_STARTED", "RUN_FINISHED"]);
    expect(logs.filter((l) => l.msg === "dropped invalid runner output line").map((l) => l.obj.reason)).toEqual(["JSON nested deeper than 100 levels"]);
  });

  test("a runner's own RUN_ERROR ends the turn as error with its (scrubbed) message", async () => {
    const { sup } = supervisor(turnsRoot, "script");
    const lines = [`{"type":"RUN_STARTED","threadId":"x","runId":"y"}`, `{"type":"RUN_ERROR","message":"bad ${SECRETS.github}","code":"x"}`];
    const ctx = makeContext({}, { fixture: { lines } });
    const r = await runTurn(sup, ctx);
    expect(r.outcome).toMatchObject({ status: "error", message: "bad [REDACTED]" });
    expect(r.events[0]).toMatchObject({ threadId: ctx.threadId, runId: ctx.runId });
  });
});

describe("LocalRunnerSupervisor: failures and teardown", () => {
  test("crash mid-stream → RUN_ERROR runner_exited, stderr logged scrubbed", async () => {
    const { sup, logs } = supervisor(turnsRoot, "crash");
    const r = await runTurn(sup, makeContext());
    expect(r.types).toEqual(["RUN_STARTED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "RUN_ERROR"]);
    expect(r.events.at(-1)).toMatchObject({ message: "Runner exited with code 3 before finishing the run", code: "runner_exited" });
    expect(r.outcome).toMatchObject({ status: "error", exitCode: 3 });
    const stderr = logs.filter((l) => l.msg === "runner stderr").map((l) => l.obj.stderr);
    expect(stderr).toContain("crash: about to fail, GITHUB_TOKEN=[REDACTED]");
    noSecrets(logs);
  });

  test("killed by a signal → RUN_ERROR naming the signal", async () => {
    const { sup } = supervisor(turnsRoot, "crash");
    const r = await runTurn(sup, makeContext({}, { fixture: { signal: "SIGKILL" } }));
    expect(r.events.at(-1)).toMatchObject({ type: "RUN_ERROR", message: "Runner was killed by SIGKILL before finishing the run" });
  });

  test("a background grandchild is gone after teardown", async () => {
    const { sup } = supervisor(turnsRoot, "grandchild");
    let aliveDuringTurn = false;
    const r = await runTurn(sup, makeContext(), (e) => {
      const v = (e as unknown as { name?: string; value?: { pid: number } }).name === "grandchild" ? (e as unknown as { value: { pid: number } }).value : null;
      if (v) aliveDuringTurn = alive(v.pid);
    });
    expect(aliveDuringTurn).toBe(true);
    expect(r.outcome.status).toBe("finished");
    const g = custom<{ pid: number; pgid: number; runnerPid: number }>(r.events, "grandchild")!;
    expect(g.pgid).toBe(g.runnerPid); // the runner leads its own group
    expect(g.pid).toBeGreaterThan(0);
    expect(alive(g.pid)).toBe(false);
    expect(processGroupMembers(g.pgid)).toEqual([]);
  });

  test("runner exits without finishing while a grandchild holds stdout open → RUN_ERROR promptly", async () => {
    const { sup } = supervisor(turnsRoot, "grandchild");
    const r = await runTurn(sup, makeContext({}, { fixture: { holdStdout: true, finish: false } }));
    expect(r.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "runner_exited" });
    expect(r.ms).toBeLessThan(5000);
    const g = custom<{ pid: number; pgid: number }>(r.events, "grandchild")!;
    expect(alive(g.pid)).toBe(false);
    expect(processGroupMembers(g.pgid)).toEqual([]);
  });

  test("client abort mid-turn → aborted, RUN_ERROR, process group and turn dir gone", async () => {
    const { sup } = supervisor(turnsRoot, "slow");
    const ac = new AbortController();
    let pgid = 0;
    const r = await runTurn(sup, makeContext({ signal: ac.signal }), (e) => {
      const v = (e as unknown as { name?: string; value?: { pgid: number } }).name === "slow" ? (e as unknown as { value: { pgid: number } }).value : undefined;
      if (v) {
        pgid = v.pgid;
        setTimeout(() => ac.abort(), 20);
      }
    });
    expect(r.outcome.status).toBe("aborted");
    expect(r.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "turn_aborted" });
    expect(pgid).toBeGreaterThan(0);
    expect(processGroupMembers(pgid)).toEqual([]);
    expect(sup.liveTurns).toBe(0);
  });

  test("a runner ignoring SIGTERM is SIGKILLed after graceMs", async () => {
    const { sup, logs } = supervisor(turnsRoot, "slow", { graceMs: 300 });
    const ac = new AbortController();
    let pgid = 0;
    const r = await runTurn(sup, makeContext({ signal: ac.signal }, { fixture: { ignoreSigterm: true } }), (e) => {
      if ((e as unknown as { name?: string }).name === "slow") {
        pgid = (e as unknown as { value: { pgid: number } }).value.pgid;
        ac.abort();
      }
    });
    expect(r.outcome.status).toBe("aborted");
    expect(r.ms).toBeGreaterThanOrEqual(300);
    expect(processGroupMembers(pgid)).toEqual([]);
    expect(logs.find((l) => l.msg === "runner process group torn down")?.obj.how).toBe("killed");
  });

  test("deadline → timeout with RUN_ERROR turn_timeout", async () => {
    const { sup } = supervisor(turnsRoot, "slow");
    const r = await runTurn(sup, makeContext({ deadline: Date.now() + 1500 }));
    expect(r.outcome.status).toBe("timeout");
    expect(r.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "turn_timeout" });
    expect(r.types[0]).toBe("RUN_STARTED");
  });

  test("interrupt(ref) SIGINTs the group; the runner winds down with RUN_FINISHED; the same run ID in another session is not touched", async () => {
    const { sup } = supervisor(turnsRoot, "slow");
    const ctx = makeContext();
    let hit: boolean | undefined;
    const r = await runTurn(sup, ctx, (e) => {
      if ((e as unknown as { name?: string }).name !== "slow") return;
      expect([sup.interrupt({ ...ctx, session: "other" }), sup.interrupt({ ...ctx, project: "other" })]).toEqual([false, false]);
      hit = sup.interrupt(ctx);
    });
    expect(hit).toBe(true);
    expect(r.outcome.status).toBe("finished");
    expect(text(r.events)).toBe("interrupted");
    expect(sup.interrupt({ ...ctx, runId: "no-such-run" })).toBe(false);
  });

  test("shutdown() tears down live turns and refuses new ones", async () => {
    const { sup } = supervisor(turnsRoot, "slow");
    let resolveStarted!: () => void;
    const started = new Promise<void>((r) => (resolveStarted = r));
    const turn = runTurn(sup, makeContext(), (e) => (e as unknown as { name?: string }).name === "slow" && resolveStarted());
    await started;
    await sup.shutdown();
    const r = await turn;
    expect(r.outcome.status).toBe("aborted");
    expect(r.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "gateway_shutdown" });
    const after = await runTurn(sup, makeContext());
    expect(after.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(after.outcome.status).toBe("aborted");
  });

  test("an already-aborted turn never spawns", async () => {
    const { sup } = supervisor(turnsRoot, "slow");
    const ac = new AbortController();
    ac.abort();
    const r = await runTurn(sup, makeContext({ signal: ac.signal }));
    expect(r.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(r.outcome.status).toBe("aborted");
  });

  test("spawn failure (ENOENT) → RUN_ERROR 'Runner could not be started', no throw", async () => {
    const { sup } = supervisor(turnsRoot, "slow", { command: ["/nonexistent/turnkey-runner"] });
    const r = await runTurn(sup, makeContext());
    expect(r.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(r.events[1]).toMatchObject({ message: "Runner could not be started", code: "runner_unavailable" });
    expect(r.outcome.status).toBe("error");
  });

  test("turn directory cannot be created → RUN_ERROR turn_setup_failed", async () => {
    const { sup } = supervisor("/proc/turnkey-cannot-create", "slow");
    const r = await runTurn(sup, makeContext());
    expect(r.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "turn_setup_failed" });
    expect(r.outcome.status).toBe("error");
  });
});
