import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { BaseEvent } from "@ag-ui/core";
import { freeLoopbackPort, HttpRunnerSupervisor, type HttpRunnerOptions } from "../../src/runner/http-runner.ts";
import { processGroupMembers } from "../../src/runner/process-group.ts";
import type { TurnContext, TurnOutcome } from "../../src/runner/types.ts";
import { makeContext, SECRETS } from "./context.ts";
import { custom, memoryLogger } from "./harness.ts";

const FIXTURE = resolve(import.meta.dir, "../fixtures/remote/http-runner.ts");
let root: string;
let turnsRoot: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "turnkey-http-runner-"));
  turnsRoot = join(root, "turns");
});
afterAll(() => rm(root, { recursive: true, force: true }));
afterEach(() => {
  if (existsSync(turnsRoot)) expect(readdirSync(turnsRoot)).toEqual([]);
});

function supervisor(startMode = "normal", extra: Partial<HttpRunnerOptions> = {}) {
  const mem = memoryLogger();
  const sup = new HttpRunnerSupervisor({
    command: [process.execPath, FIXTURE],
    passthrough: ["FIXTURE_HTTP_MODE"],
    graceMs: 1000,
    githubHosts: ["github.com"],
    gitlabHosts: ["gitlab.com"],
    turnsRoot,
    logger: mem.logger,
    baseEnv: { PATH: process.env.PATH, FIXTURE_HTTP_MODE: startMode, TURNKEY_MASTER_KEY: "gateway-master-key-0000000000" },
    ...extra,
  });
  return { sup, logs: mem.lines };
}

async function run(sup: HttpRunnerSupervisor, ctx: TurnContext, onEvent?: (e: BaseEvent) => void) {
  const events: BaseEvent[] = [];
  const t0 = Date.now();
  const outcome: TurnOutcome = await sup.execute(ctx, (e) => {
    events.push(e);
    onEvent?.(e);
  });
  return { events, outcome, types: events.map((e) => e.type as string), ms: Date.now() - t0 };
}

const gone = (pgid: number) => (processGroupMembers(pgid) ?? []).length === 0;

describe("HttpRunnerSupervisor", () => {
  test("a turn: per-turn env plus PORT, identity headers, health then POST, process group and turn dir gone after", async () => {
    const { sup, logs } = supervisor();
    const r = await run(sup, makeContext());
    expect(r.outcome.status).toBe("finished");
    expect(r.types).toEqual(["RUN_STARTED", "CUSTOM", "RUN_FINISHED"]);
    const v = custom<{ port: string; envNames: string[]; github: string; turnToken: string; home: string; cwd: string; pid: number; pgid: number; headers: Record<string, string> }>(r.events, "env")!;
    expect(Number(v.port)).toBeGreaterThan(0);
    expect(v.envNames).toContain("GITHUB_TOKEN");
    expect(v.envNames).toContain("GIT_CONFIG_GLOBAL");
    expect(v.envNames).not.toContain("TURNKEY_MASTER_KEY");
    expect(v.github).toBe("[REDACTED]");
    expect(v.turnToken).toBe("[REDACTED]");
    expect(v.cwd.startsWith(turnsRoot + "/turn-")).toBe(true);
    expect(v.home).toBe(v.cwd);
    expect(v.pgid).toBe(v.pid);
    expect(v.headers["x-current-user-id"]).toBe("alice");
    expect(v.headers["x-caller-token"]).toBe("Bearer [REDACTED]");
    expect(gone(v.pgid)).toBe(true);
    expect(existsSync(v.cwd)).toBe(false);
    expect(JSON.stringify(logs)).not.toContain(SECRETS.github);
    expect(sup.liveTurns).toBe(0);
  }, 20_000);

  test("slow start is waited for; a runner that exits before it is ready → RUN_ERROR runner_exited", async () => {
    const slow = await run(supervisor("slow-start").sup, makeContext());
    expect(slow.outcome.status).toBe("finished");
    const early = await run(supervisor("exit-early").sup, makeContext());
    expect(early.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(early.events[1]).toMatchObject({ code: "runner_exited", message: "Runner exited with code 3 before finishing the run" });
  }, 20_000);

  test("never healthy → RUN_ERROR runner_unavailable after the health timeout, group torn down", async () => {
    const r = await run(supervisor("never-healthy", { healthTimeoutMs: 1000 }).sup, makeContext());
    expect(r.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(r.events[1]).toMatchObject({ code: "runner_unavailable" });
    expect(r.ms).toBeLessThan(5000);
  }, 20_000);

  test("a runner dying mid-stream ends the turn with a RUN_ERROR", async () => {
    const r = await run(supervisor().sup, makeContext({}, { fixture: { mode: "exit-mid" } }));
    expect(r.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(["runner_exited", "runner_stream_ended"]).toContain((r.events[1] as unknown as { code: string }).code);
    expect(r.outcome.status).toBe("error");
  }, 20_000);

  test("interrupt sends SIGINT to the group; the runner's own terminal event ends the turn", async () => {
    const { sup } = supervisor();
    const ctx = makeContext({}, { fixture: { mode: "hang" } });
    expect(sup.interrupt({ ...ctx, runId: "no-such-run" })).toBe(false);
    const r = await run(sup, ctx, (e) => {
      if (e.type === "RUN_STARTED")
        setTimeout(() => expect([sup.interrupt({ ...ctx, session: "other" }), sup.interrupt(ctx)]).toEqual([false, true]), 100);
    });
    expect(r.types).toEqual(["RUN_STARTED", "RUN_ERROR"]);
    expect(r.events[1]).toMatchObject({ message: "interrupted by SIGINT" });
  }, 20_000);

  test("client abort and shutdown tear down the whole group, grandchildren included", async () => {
    const { sup } = supervisor();
    const ac = new AbortController();
    const r = await run(sup, makeContext({ signal: ac.signal }, { fixture: { mode: "grandchild" } }), (e) => {
      if (e.type === "CUSTOM") setTimeout(() => ac.abort(), 50);
    });
    expect(r.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "turn_aborted" });
    const g = custom<{ pid: number; pgid: number }>(r.events, "grandchild")!;
    expect(gone(g.pgid)).toBe(true);

    const pending = run(sup, makeContext({}, { fixture: { mode: "hang" } }));
    while (sup.liveTurns === 0) await Bun.sleep(10);
    await Bun.sleep(1500);
    await sup.shutdown();
    expect((await pending).events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "gateway_shutdown" });
    expect((await run(sup, makeContext())).events.at(-1)).toMatchObject({ code: "gateway_shutdown" });
  }, 20_000);

  test("freeLoopbackPort gives a bindable port", async () => {
    const port = await freeLoopbackPort();
    const s = Bun.serve({ hostname: "127.0.0.1", port, fetch: () => new Response("") });
    expect(s.port).toBe(port);
    s.stop(true);
  });
});
