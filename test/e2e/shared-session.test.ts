/**
 * End to end, issue 2: a real gateway on a loopback port, real runner subprocesses, and the real
 * AG-UI client (`@ag-ui/client` HttpAgent). Owner alice shares the session with bob (edit) and
 * carol (view); dave is a stranger. Each turn must see its sender's credentials and nobody else's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HttpAgent } from "@ag-ui/client";
import type { BaseEvent } from "@ag-ui/core";
import { fixtureRunner as runner, startGateway, runTurn, textOf, type TestGateway } from "../helpers/gateway.ts";
import { startGitServer } from "../helpers/git-server.ts";
import { TurnTokenIssuer } from "../../src/identity/turn-token.ts";

const sha = (v: string) => createHash("sha256").update(v).digest("hex");
const ALICE_GH = "ghp_alice_0000000000000000000000000000";
const BOB_GH = "ghp_bob_11111111111111111111111111111111";

/** Run a turn through the real AG-UI client; returns every event it saw. */
async function clientTurn(gw: TestGateway, token: string, session: string, forwardedProps: Record<string, unknown> = {}) {
  const agent = new HttpAgent({
    url: `${gw.url}/api/projects/demo/agentic-sessions/${session}/agui/run`,
    headers: { Authorization: `Bearer ${token}` },
    threadId: session,
    initialMessages: [{ id: crypto.randomUUID(), role: "user", content: "who am I?" }],
  });
  const events: BaseEvent[] = [];
  await agent.runAgent({ forwardedProps }, { onEvent: ({ event }) => void events.push(event) });
  return events;
}

const whoami = (events: any[]) => events.find((e) => e.type === "CUSTOM" && e.name === "whoami")?.value;

describe("a shared session with the whoami runner", () => {
  let gw: TestGateway;
  let git: Awaited<ReturnType<typeof startGitServer>>;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    git = await startGitServer({ token: BOB_GH });
    gw = await startGateway({ TURNKEY_RUNNER_COMMAND: runner("whoami"), TURNKEY_GITHUB_HOSTS: `github.com,${new URL(git.url).origin}` });
    for (const u of ["alice", "bob", "carol", "dave", "erin"]) tokens[u] = await gw.token(u, u[0]!.toUpperCase() + u.slice(1));
    expect((await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: tokens.alice, body: { name: "pairing" } })).status).toBe(201);
    for (const [u, role] of [["bob", "edit"], ["carol", "view"], ["erin", "edit"]])
      expect((await gw.api("PUT", `/api/projects/demo/agentic-sessions/pairing/collaborators/${u}`, { token: tokens.alice, body: { role } })).status).toBe(200);
    expect((await gw.api("PUT", "/api/users/me/credentials/github", { token: tokens.alice, body: { token: ALICE_GH, userName: "alice" } })).status).toBe(200);
    expect((await gw.api("PUT", "/api/users/me/credentials/github", { token: tokens.bob, body: { token: BOB_GH, userName: "bob", email: "bob@example.com" } })).status).toBe(200);
  });
  afterAll(async () => {
    await gw?.stop();
    await git?.stop();
  });

  test("bob's turn sees bob's token in env, file and endpoint, never alice's; alice's next turn sees alice's", async () => {
    const b = whoami(await clientTurn(gw, tokens.bob!, "pairing"));
    expect(b.user).toBe("bob");
    expect(b.endpointStatus).toBe(200);
    expect([b.envToken, b.fileToken, b.endpointToken]).toEqual([sha(BOB_GH), sha(BOB_GH), sha(BOB_GH)]);
    expect(JSON.stringify(b)).not.toContain(sha(ALICE_GH));
    expect(b.gitName).toBe("Bob");

    const a = whoami(await clientTurn(gw, tokens.alice!, "pairing"));
    expect(a.user).toBe("alice");
    expect([a.envToken, a.fileToken, a.endpointToken]).toEqual([sha(ALICE_GH), sha(ALICE_GH), sha(ALICE_GH)]);
    expect(JSON.stringify(a)).not.toContain(sha(BOB_GH));
  });

  test("a collaborator without a GitHub credential gets none (no owner fallback)", async () => {
    const e = whoami(await clientTurn(gw, tokens.erin!, "pairing"));
    expect(e.user).toBe("erin");
    expect([e.envToken, e.fileToken, e.endpointToken]).toEqual([null, null, null]);
    expect(e.endpointStatus).toBe(404);
  });

  test("view collaborators and strangers get 403 on run; unknown sessions 404", async () => {
    for (const u of ["carol", "dave"]) {
      const r = await runTurn(gw, "demo", "pairing", tokens[u]!);
      expect(r.status).toBe(403);
      expect(r.body.code).toBe("forbidden");
    }
    expect((await runTurn(gw, "demo", "nope", tokens.bob!)).status).toBe(404);
    expect((await runTurn(gw, "demo", "pairing", "not-a-token")).status).toBe(401);
  });

  test("a runner that prints its token: the client sees [REDACTED]", async () => {
    const r = await runTurn(gw, "demo", "pairing", tokens.bob!, { forwardedProps: { fixture: { echoToken: true } } });
    expect(r.status).toBe(200);
    expect(textOf(r.events)).toContain("my token is [REDACTED]");
    expect(r.text).not.toContain(BOB_GH);
  });

  test("the turn directory is gone after the turn", async () => {
    const b = whoami((await runTurn(gw, "demo", "pairing", tokens.bob!)).events);
    expect(b.cwd).toStartWith(join(gw.dataDir, "turns"));
    expect(existsSync(b.cwd)).toBe(false);
    expect(gw.server.deps.activeRuns.size).toBe(0);
  });

  test("git ls-remote authenticates with the sender's token, and fails for a sender without one", async () => {
    const bob = whoami((await runTurn(gw, "demo", "pairing", tokens.bob!, { forwardedProps: { fixture: { gitUrl: git.repoUrl } } })).events);
    expect(bob.gitExit).toBe(0);
    const erin = whoami((await runTurn(gw, "demo", "pairing", tokens.erin!, { forwardedProps: { fixture: { gitUrl: git.repoUrl } } })).events);
    expect(erin.gitExit).not.toBe(0);
    const alice = whoami((await runTurn(gw, "demo", "pairing", tokens.alice!, { forwardedProps: { fixture: { gitUrl: git.repoUrl } } })).events);
    expect(alice.gitExit).not.toBe(0); // the server only accepts bob's token
  });

  test("credential endpoint with user tokens follows DESIGN §2.3", async () => {
    const path = "/api/projects/demo/agentic-sessions/pairing/credentials/github";
    // Owner without header: own credentials.
    const own = await gw.api("GET", path, { token: tokens.alice });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ token: ALICE_GH, provider: "github", userName: "alice" });
    // Owner asking for a collaborator's credentials: 403.
    expect((await gw.api("GET", path, { token: tokens.alice, headers: { "X-Runner-Current-User": "bob" } })).status).toBe(403);
    // Collaborator without the header: the effective user is the owner → 403.
    const collab = await gw.api("GET", path, { token: tokens.bob });
    expect(collab.status).toBe(403);
    expect(JSON.stringify(collab.body)).not.toContain(ALICE_GH);
    // Collaborator naming themselves: their own.
    expect((await gw.api("GET", path, { token: tokens.bob, headers: { "X-Runner-Current-User": "bob" } })).body.token).toBe(BOB_GH);
    // View collaborator and stranger: 403.
    expect((await gw.api("GET", path, { token: tokens.carol, headers: { "X-Runner-Current-User": "carol" } })).status).toBe(403);
    expect((await gw.api("GET", path, { token: tokens.dave, headers: { "X-Runner-Current-User": "alice" } })).status).toBe(403);
    expect((await gw.api("GET", path)).status).toBe(401);
  });

  test("a turn token outside its active run is rejected", async () => {
    // Same signing key as the gateway (same data dir): a well-formed token for a run that is not active.
    const issuer = await TurnTokenIssuer.open({ dataDir: gw.dataDir });
    const { token } = await issuer.mint({ userId: "bob", project: "demo", session: "pairing", runId: "finished-run", deadline: Date.now() + 60_000 });
    const path = "/api/projects/demo/agentic-sessions/pairing/credentials/github";
    const r = await gw.api("GET", path, { token });
    expect(r.status).toBe(401);
    expect(JSON.stringify(r.body)).not.toContain(BOB_GH);
    // And for another session it is refused whatever the run state.
    expect((await gw.api("GET", "/api/projects/demo/agentic-sessions/other/credentials/github", { token })).status).toBe(403);
  });

  test("every credential decision, share and credential write is audited with hashed principals only", async () => {
    const log = readFileSync(join(gw.dataDir, "audit.log"), "utf8");
    const lines = log.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.some((l) => l.event === "credential.access" && l.decision === "allow")).toBe(true);
    expect(lines.some((l) => l.event === "credential.access" && l.decision === "deny")).toBe(true);
    expect(lines.some((l) => l.event === "turn.start")).toBe(true);
    expect(lines.some((l) => l.event === "turn.end")).toBe(true);
    expect(lines.some((l) => l.event === "session.share" && l.role === "edit" && l.session === "pairing" && /^hmac-sha256:/.test(l.effectiveUser))).toBe(true);
    expect(lines.some((l) => l.event === "credential.write" && l.provider === "github" && l.session === undefined)).toBe(true);
    for (const l of lines) expect(l.principal).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(log).not.toMatch(/"(alice|bob|carol|dave|erin)"/);
    expect(log).not.toContain(BOB_GH);
  });
});

describe("turn tokens across a gateway restart", () => {
  test("a token from an earlier run is dead even when a new run reuses its run ID", async () => {
    const first = await startGateway({ TURNKEY_RUNNER_COMMAND: runner("slow") });
    const dataDir = first.dataDir;
    const bob = await first.token("bob");
    await first.api("POST", "/api/projects/demo/agentic-sessions", { token: bob, body: { name: "r" } });
    await first.api("PUT", "/api/users/me/credentials/github", { token: bob, body: { token: BOB_GH } });
    // A token minted with the gateway's key for run "fixed", as a runner of an earlier run held it.
    const issuer = await TurnTokenIssuer.open({ dataDir });
    const { token: old } = await issuer.mint({ userId: "bob", project: "demo", session: "r", runId: "fixed", deadline: Date.now() + 60_000 });
    const ac = new AbortController();
    const turn = fetch(`${first.url}/api/projects/demo/agentic-sessions/r/agui/run`, {
      method: "POST",
      signal: ac.signal,
      headers: { authorization: `Bearer ${bob}`, "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ runId: "fixed", messages: [{ id: "m", role: "user", content: "x" }] }),
    }).then((r) => r.text()).catch(() => "");
    while (first.server.deps.activeRuns.size === 0) await Bun.sleep(10);
    const r = await first.api("GET", "/api/projects/demo/agentic-sessions/r/credentials/github", { token: old });
    expect(r.status).toBe(401);
    expect(r.body.code).toBe("invalid_token");
    expect(JSON.stringify(r.body)).not.toContain(BOB_GH);
    ac.abort();
    await turn;
    await first.stop();
  });
});
