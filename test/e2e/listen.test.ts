/**
 * Listening and providers at the edge: a second gateway on a port already in use fails to start
 * (Bun would otherwise share the port with SO_REUSEPORT and two processes would each run a turn in
 * one session); a provider the gateway does not enable is not served by the credential endpoint.
 */
import { expect, test } from "bun:test";
import { startGateway } from "../helpers/gateway.ts";

test("a second gateway on the same port refuses to start", async () => {
  const first = await startGateway({});
  try {
    const port = new URL(first.url).port;
    await expect(startGateway({ TURNKEY_PORT: port })).rejects.toThrow();
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
  } finally {
    await first.stop();
  }
});

test("a provider outside TURNKEY_PROVIDERS is refused by the credential endpoint (it is never loaded, so never redacted)", async () => {
  const gw = await startGateway({ TURNKEY_PROVIDERS: "github" });
  try {
    const alice = await gw.token("alice");
    await gw.api("POST", "/api/projects/demo/agentic-sessions", { token: alice, body: { name: "s" } });
    const r = await gw.api("GET", "/api/projects/demo/agentic-sessions/s/credentials/jira", { token: alice });
    expect([r.status, r.body.code]).toEqual([400, "unknown_provider"]);
  } finally {
    await gw.stop();
  }
});
