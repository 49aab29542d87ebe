/**
 * TURNKEY_RUNNER_PROTOCOL=http through the real gateway, with the upstream-style example
 * runner as the per-turn subprocess: it asks the credential endpoint with `X-Caller-Token`
 * verbatim plus `X-Runner-Current-User`, and gets the sender's credential, turn by turn.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { runTurn, startGateway, type TestGateway } from "../helpers/gateway.ts";

const RUNNER = resolve(import.meta.dir, "../../examples/runners/upstream-style.ts");
const ALICE_GH = "ghp_alice_http_runner_00000000000000000";
const BOB_GH = "ghp_bob_http_runner_1111111111111111111";
const short = (t: string) => createHash("sha256").update(t).digest("hex").slice(0, 12);
const said = (events: any[]) => events.filter((e) => e.type === "TEXT_MESSAGE_CONTENT").map((e) => e.delta).join("");

let gw: TestGateway;
const tok: Record<string, string> = {};
beforeAll(async () => {
  gw = await startGateway({ TURNKEY_RUNNER_PROTOCOL: "http", TURNKEY_RUNNER_COMMAND: JSON.stringify([process.execPath, RUNNER]) });
  tok.alice = await gw.token("alice", "Alice");
  tok.bob = await gw.token("bob", "Bob");
  expect((await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: tok.alice, body: { name: "pair" } })).status).toBe(201);
  expect((await gw.api("PUT", "/api/projects/demo/agentic-sessions/pair/collaborators/bob", { token: tok.alice, body: { role: "edit" } })).status).toBe(200);
  expect((await gw.api("PUT", "/api/users/me/credentials/github", { token: tok.alice, body: { token: ALICE_GH, userName: "alice" } })).status).toBe(200);
  expect((await gw.api("PUT", "/api/users/me/credentials/github", { token: tok.bob, body: { token: BOB_GH, userName: "bob" } })).status).toBe(200);
});
afterAll(() => gw?.stop());

describe("spawned upstream-style HTTP runner", () => {
  test("each turn gets its sender's credential; the subprocess and turn dir are gone after", async () => {
    const b = await runTurn(gw, "demo", "pair", tok.bob!);
    expect(b.status).toBe(200);
    expect(b.events.at(-1).type).toBe("RUN_FINISHED");
    expect(said(b.events)).toBe(`Hello Bob. GitHub token sha256:${short(BOB_GH)}.`);
    const a = await runTurn(gw, "demo", "pair", tok.alice!);
    expect(said(a.events)).toBe(`Hello Alice. GitHub token sha256:${short(ALICE_GH)}.`);
    expect(a.text + b.text).not.toContain(ALICE_GH);
    expect(readdirSync(join(gw.dataDir, "turns"))).toEqual([]);
  }, 30_000);
});
