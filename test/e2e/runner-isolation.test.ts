/**
 * End to end, DESIGN §7 rule 1 against a local attacker: with TURNKEY_RUNNER_UIDS every spawned
 * runner runs under a uid of its own (supplementary groups dropped) and can read neither the
 * gateway's data dir (master key, signing keys, database), nor the gateway's
 * /proc/<pid>/environ, nor another live turn's directory or environ; it still gets its sender's
 * credentials. A uid goes back to the pool only after teardown (processes swept, even one that
 * left the process group); an exhausted pool refuses the turn with RUN_ERROR runner_unavailable.
 * Real uid switching needs root: skipped otherwise. Without the setting, the runner runs as the
 * gateway and reads all of it (the exposure the setting closes).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fixtureRunner as runner, runTurn, startGateway, type TestGateway } from "../helpers/gateway.ts";
import { collectSse } from "../helpers/streams.ts";

const isRoot = process.getuid?.() === 0;
const sha = (v: string) => createHash("sha256").update(v).digest("hex");
const ALICE_GH = "ghp_alice_isolation_000000000000000000";
const BOB_GH = "ghp_bob_isolation_11111111111111111111";
/** A uid range of our own: other suites on this machine may run gateways with pools at the same time. */
const BASE = 230_000 + (process.pid % 5_000) * 4; // [230000, 250000): disjoint from runner-uids.test.ts's band
const DATA_FILES = ["master.key", "turn-signing.jwk", "dev-issuer.jwk", "turnkey.db"];

/** POST a run and read its SSE stream incrementally: `waitFor` an event mid-turn, `done` at the end. */
function startTurn(gw: TestGateway, session: string, token: string, fixture: Record<string, unknown>) {
  const stream = fetch(`${gw.url}/api/projects/demo/agentic-sessions/${session}/agui/run`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ messages: [{ id: "m1", role: "user", content: "hi" }], forwardedProps: { fixture } }),
  }).then((res) => {
    expect(res.status).toBe(200);
    return collectSse(res);
  });
  return {
    done: stream.then(async (c) => (await c.ended, c.events)),
    waitFor: async (pred: (e: any) => boolean, ms = 20_000) => (await stream).waitFor(pred, ms),
  };
}

const report = (events: any[]) => events.find((e) => e.type === "CUSTOM" && e.name === "isolation")?.value;
const isReport = (e: any) => e.type === "CUSTOM" && e.name === "isolation";

/** A gateway running `fixture` with alice's session `a` (bob: edit) and bob's session `b`; both have GitHub credentials. */
async function setup(env: Record<string, string>, fixture = "isolation") {
  const gw = await startGateway({ TURNKEY_RUNNER_COMMAND: runner(fixture), ...env });
  const tok = { alice: await gw.token("alice", "Alice"), bob: await gw.token("bob", "Bob") };
  expect((await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: tok.alice, body: { name: "a" } })).status).toBe(201);
  expect((await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: tok.bob, body: { name: "b" } })).status).toBe(201);
  expect((await gw.api("PUT", "/api/users/me/credentials/github", { token: tok.alice, body: { token: ALICE_GH } })).status).toBe(200);
  expect((await gw.api("PUT", "/api/users/me/credentials/github", { token: tok.bob, body: { token: BOB_GH } })).status).toBe(200);
  for (const f of DATA_FILES) expect(existsSync(join(gw.dataDir, f))).toBe(true);
  const dataTargets = Object.fromEntries([["dataDir", gw.dataDir], ...DATA_FILES.map((f) => [f, join(gw.dataDir, f)])]);
  return { gw, tok, dataTargets };
}

describe.skipIf(!isRoot)("TURNKEY_RUNNER_UIDS (root)", () => {
  let gw: TestGateway;
  let tok: { alice: string; bob: string };
  let dataTargets: Record<string, string>;
  beforeAll(async () => {
    ({ gw, tok, dataTargets } = await setup({ TURNKEY_RUNNER_UIDS: `${BASE}-${BASE + 1}` }));
  });
  afterAll(() => gw?.stop());

  test("the runner runs as a pool uid without groups, reads nothing of the gateway's, and still gets its sender's credentials", async () => {
    const leftover = `/tmp/turnkey-isolation-leftover-${process.pid}`;
    const r = await runTurn(gw, "demo", "a", tok.alice, { forwardedProps: { fixture: { targets: dataTargets, leaveFile: leftover } } });
    const v = report(r.events);
    expect(r.events.at(-1).type).toBe("RUN_FINISHED");
    expect([v.uid, v.gid, v.groups]).toEqual([BASE, BASE, []]);
    expect(v.ppid).toBe(process.pid); // the in-process gateway spawned it: gatewayEnviron is ours
    expect(v.read).toEqual({ gatewayEnviron: "EACCES", ownEnviron: "read", dataDir: "EACCES", ...Object.fromEntries(DATA_FILES.map((f) => [f, "EACCES"])) });
    expect([v.envToken, v.fileToken, v.endpointToken, v.endpointStatus]).toEqual([sha(ALICE_GH), sha(ALICE_GH), sha(ALICE_GH), 200]);
    expect(v.cwd.startsWith(gw.server.deps.config.turnsDir + "/turn-")).toBe(true);
    expect(v.tmpdir).toBe(v.cwd);
    // Teardown: the turn dir and the uid's file in /tmp are gone.
    await gw.idle();
    expect(existsSync(v.cwd)).toBe(false);
    expect(existsSync(leftover)).toBe(false);
  }, 30_000);

  test("two concurrent turns get different uids and cannot read each other's environ or turn dir; both uids come back", async () => {
    const a = startTurn(gw, "a", tok.alice, { holdMs: 4000 });
    const va = (await a.waitFor(isReport)).value;
    const b = await runTurn(gw, "demo", "b", tok.bob, {
      forwardedProps: { fixture: { targets: { siblingEnviron: `/proc/${va.pid}/environ`, siblingDir: va.cwd, siblingToken: join(va.cwd, "github_token") } } },
    });
    const vb = report(b.events);
    expect(va.uid).toBe(BASE);
    expect(vb.uid).toBe(BASE + 1);
    expect(vb.read).toEqual({ gatewayEnviron: "EACCES", ownEnviron: "read", siblingEnviron: "EACCES", siblingDir: "EACCES", siblingToken: "EACCES" });
    expect([vb.envToken, vb.endpointToken]).toEqual([sha(BOB_GH), sha(BOB_GH)]);
    expect((await a.done).at(-1).type).toBe("RUN_FINISHED");
    await gw.idle();
    // Released after teardown: the next turns start again from the lowest uid.
    expect(report((await runTurn(gw, "demo", "b", tok.bob)).events).uid).toBe(BASE);
    expect(report((await runTurn(gw, "demo", "a", tok.alice)).events).uid).toBe(BASE);
  }, 30_000);
});

describe.skipIf(!isRoot)("TURNKEY_RUNNER_UIDS: teardown and an exhausted pool (root)", () => {
  const gateways: TestGateway[] = [];
  afterAll(() => Promise.all(gateways.map((g) => g.stop())));

  test("a pool of one: a second concurrent turn gets RUN_STARTED … RUN_ERROR runner_unavailable; the uid is free again after", async () => {
    const { gw, tok } = await setup({ TURNKEY_RUNNER_UIDS: String(BASE + 2) });
    gateways.push(gw);
    const a = startTurn(gw, "a", tok.alice, { holdMs: 2000 });
    expect((await a.waitFor(isReport)).value.uid).toBe(BASE + 2);
    const b = await runTurn(gw, "demo", "b", tok.bob);
    expect(b.events[0].type).toBe("RUN_STARTED");
    expect(b.events.at(-1)).toMatchObject({ type: "RUN_ERROR", code: "runner_unavailable", message: "no free runner uid" });
    expect(report(b.events)).toBeUndefined(); // no runner was started
    expect((await a.done).at(-1).type).toBe("RUN_FINISHED");
    await gw.idle();
    expect(report((await runTurn(gw, "demo", "b", tok.bob)).events).uid).toBe(BASE + 2);
  }, 30_000);

  test("teardown kills the runner's process group, and a grandchild that left it with setsid", async () => {
    const { gw, tok } = await setup({ TURNKEY_RUNNER_UIDS: String(BASE + 3) }, "grandchild");
    gateways.push(gw);
    for (const setsid of [false, true]) {
      const r = await runTurn(gw, "demo", "a", tok.alice, { forwardedProps: { fixture: { setsid } } });
      const g = r.events.find((e) => e.name === "grandchild")?.value;
      expect(g.uid).toBe(BASE + 3);
      expect(r.events.at(-1).type).toBe("RUN_FINISHED");
      await gw.idle();
      expect(processState(g.pid)).toBeOneOf(["gone", "Z"]);
    }
  }, 30_000);

  test("the HTTP runner protocol runs under a pool uid too and gets its sender's credential", async () => {
    const gw = await startGateway({
      TURNKEY_RUNNER_UIDS: String(BASE + 3),
      TURNKEY_RUNNER_PROTOCOL: "http",
      TURNKEY_RUNNER_COMMAND: JSON.stringify([process.execPath, resolve(import.meta.dir, "../../examples/runners/upstream-style.ts")]),
    });
    gateways.push(gw);
    const bob = await gw.token("bob", "Bob");
    await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: bob, body: { name: "b" } });
    await gw.api("PUT", "/api/users/me/credentials/github", { token: bob, body: { token: BOB_GH } });
    const r = await runTurn(gw, "demo", "b", bob);
    const said = r.events.filter((e) => e.type === "TEXT_MESSAGE_CONTENT").map((e) => e.delta).join("");
    expect(said).toBe(`Hello Bob. GitHub token sha256:${sha(BOB_GH).slice(0, 12)}.`);
    // The fixture HTTP runner reports its ids.
    const fx = await startGateway({
      TURNKEY_RUNNER_UIDS: String(BASE + 3),
      TURNKEY_RUNNER_PROTOCOL: "http",
      TURNKEY_RUNNER_COMMAND: JSON.stringify([process.execPath, resolve(import.meta.dir, "../fixtures/remote/http-runner.ts")]),
    });
    gateways.push(fx);
    const fxBob = await fx.token("bob", "Bob");
    await fx.api("POST", "/api/projects/demo/agentic-sessions", { token: fxBob, body: { name: "b" } });
    const env = (await runTurn(fx, "demo", "b", fxBob)).events.find((e) => e.name === "env")?.value;
    expect([env.uid, env.gid]).toEqual([BASE + 3, BASE + 3]);
  }, 30_000);

  test("start-up fails with a ConfigError naming TURNKEY_TURNS_DIR when runner uids cannot reach it", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const closed = mkdtempSync("/tmp/turnkey-closed-"); // 0700: no runner uid can traverse it
    try {
      await expect(startGateway({ TURNKEY_RUNNER_UIDS: String(BASE + 3), TURNKEY_TURNS_DIR: join(closed, "turns") })).rejects.toThrow(/TURNKEY_TURNS_DIR/);
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });
});

describe("without TURNKEY_RUNNER_UIDS (as before)", () => {
  test("the runner runs as the gateway's user and can read its data dir and environ: the exposure the setting closes", async () => {
    const { gw, tok, dataTargets } = await setup({});
    try {
      const v = report((await runTurn(gw, "demo", "a", tok.alice, { forwardedProps: { fixture: { targets: dataTargets } } })).events);
      expect(v.uid).toBe(process.getuid!());
      expect(Object.values(v.read).every((x) => x === "read")).toBe(true);
      expect(v.cwd.startsWith(join(gw.dataDir, "turns") + "/turn-")).toBe(true);
      expect(v.envToken).toBe(sha(ALICE_GH));
    } finally {
      await gw.stop();
    }
  }, 30_000);

  test("a grandchild that calls setsid escapes process-group teardown (what per-turn uids, or cgroups, close)", async () => {
    const { gw, tok } = await setup({}, "grandchild");
    let pid = 0;
    try {
      const r = await runTurn(gw, "demo", "a", tok.alice, { forwardedProps: { fixture: { setsid: true } } });
      pid = r.events.find((e) => e.name === "grandchild")?.value.pid;
      await gw.idle();
      expect(processState(pid)).toBe("S");
    } finally {
      if (pid > 0) process.kill(pid, "SIGKILL");
      await gw.stop();
    }
  }, 30_000);
});

/** `gone`, or the one-letter state from /proc/<pid>/stat (R, S, Z, ...). */
function processState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0]!;
  } catch {
    return "gone";
  }
}
