/**
 * End to end, issue 2 "bad input": every malformed request gets a 4xx `{error, code}`, never a
 * 500, never a stack or a secret, and the server keeps serving.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";

describe("bad input", () => {
  let gw: TestGateway;
  let alice: string;
  const base = "/api/projects/demo/agentic-sessions";

  beforeAll(async () => {
    gw = await startGateway({ TURNKEY_MAX_BODY_BYTES: "65536" });
    alice = await gw.token("alice");
    await gw.api("POST", base, { token: alice, body: { name: "s" } });
  });
  afterAll(() => gw.stop());

  type Case = [name: string, method: string, path: string, body: unknown, status: number, code: string];
  const cases: Case[] = [
    ["malformed JSON on run", "POST", `${base}/s/agui/run`, "{not json", 400, "invalid_json"],
    ["missing messages", "POST", `${base}/s/agui/run`, { threadId: "t" }, 400, "validation_failed"],
    ["messages not an array", "POST", `${base}/s/agui/run`, { messages: "hi" }, 400, "validation_failed"],
    ["message without role", "POST", `${base}/s/agui/run`, { messages: [{ id: "1" }] }, 400, "validation_failed"],
    ["message with an unknown role", "POST", `${base}/s/agui/run`, { messages: [{ id: "1", role: "wizard", content: "x" }] }, 400, "validation_failed"],
    ["runId with a slash", "POST", `${base}/s/agui/run`, { runId: "a/b", messages: [] }, 400, "validation_failed"],
    ["session name ../x", "POST", `/api/projects/demo/agentic-sessions/..%2Fx/agui/run`, { messages: [] }, 400, "invalid_name"],
    ["session name A", "GET", `${base}/A`, undefined, 400, "invalid_name"],
    ["session name of 64 chars", "GET", `${base}/${"a".repeat(64)}`, undefined, 400, "invalid_name"],
    ["project name with underscore", "GET", `/api/projects/my_proj/agentic-sessions/s`, undefined, 400, "invalid_name"],
    ["create with bad name", "POST", base, { name: "Bad Name" }, 400, "invalid_name"],
    ["create without body", "POST", base, undefined, 400, "validation_failed"],
    ["unknown provider (credential endpoint)", "GET", `${base}/s/credentials/myspace`, undefined, 400, "unknown_provider"],
    ["unknown provider (self-service)", "PUT", `/api/users/me/credentials/myspace`, { token: "x" }, 400, "unknown_provider"],
    ["github credential without token", "PUT", `/api/users/me/credentials/github`, { userName: "a" }, 400, "validation_failed"],
    ["jira credential with a non-http url", "PUT", `/api/users/me/credentials/jira`, { url: "file:///etc/passwd", email: "a@b.c", apiToken: "tok-123456" }, 400, "validation_failed"],
    ["collaborator role not edit/view", "PUT", `${base}/s/collaborators/bob`, { role: "admin" }, 400, "validation_failed"],
    ["unknown route", "GET", "/api/nope", undefined, 404, "not_found"],
    ["interrupt with a string body", "POST", `${base}/s/agui/interrupt`, '"now"', 400, "validation_failed"],
    ["interrupt with an unknown field", "POST", `${base}/s/agui/interrupt`, { runId: "r", force: true }, 400, "validation_failed"],
    ["interrupt with a bad run ID", "POST", `${base}/s/agui/interrupt`, { runId: "a/b" }, 400, "validation_failed"],
    ["interrupt when nothing runs", "POST", `${base}/s/agui/interrupt`, {}, 404, "run_not_found"],
    // Malformed percent-encoding must not decode to another user ID (%E0%A4%Abob once became "ob").
    ["collaborator ID with a truncated UTF-8 escape", "PUT", `${base}/s/collaborators/%E0%A4bob`, { role: "edit" }, 400, "bad_request"],
    ["collaborator ID with a non-hex escape", "PUT", `${base}/s/collaborators/%ZZbob`, { role: "edit" }, 400, "bad_request"],
    ["collaborator ID with a lone continuation byte", "DELETE", `${base}/s/collaborators/mal%E0lory`, undefined, 400, "bad_request"],
    ["JSON nested 101 levels deep", "POST", `${base}/s/agui/run`, `{"messages":[],"state":${"[".repeat(100)}${"]".repeat(100)}}`, 400, "invalid_json"],
  ];

  test.each(cases)("%s → %i %s", async (_name, method, path, body, status, code) => {
    const r = await gw.api(method, path, { token: alice, ...(body !== undefined ? { body } : {}) });
    expect(r.status).toBe(status);
    expect(r.body).toEqual({ error: expect.any(String), code });
    expect(r.body.error).not.toMatch(/\bat .*\.ts:\d+/); // no stack
  });

  test("the WebSocket route answers anything but a complete upgrade with a JSON 426", async () => {
    for (const headers of <Record<string, string>[]>[{}, { upgrade: "websocket", connection: "Upgrade" }, { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" }]) {
      const r = await gw.api("GET", `${base}/s/agui/ws`, { token: alice, headers });
      expect([r.status, r.body.code, r.headers.get("upgrade")]).toEqual([426, "upgrade_required", "websocket"]);
    }
  });

  test("bodies are JSON: a form or multipart body → 415; a JSON body without Content-Type is read as JSON", async () => {
    const post = (body: string | FormData, headers: Record<string, string>) => fetch(gw.url + base, { method: "POST", headers: { authorization: `Bearer ${alice}`, ...headers }, body });
    const form = await post("name=from-form", { "content-type": "application/x-www-form-urlencoded" });
    expect([form.status, ((await form.json()) as { code: string }).code]).toEqual([415, "unsupported_media_type"]);
    const fd = new FormData();
    fd.set("name", "from-multipart");
    const multi = await post(fd, {});
    expect([multi.status, ((await multi.json()) as { code: string }).code]).toEqual([415, "unsupported_media_type"]);
    const bare = await fetch(gw.url + base, { method: "POST", headers: { authorization: `Bearer ${alice}` }, body: new Blob(['{"name":"no-content-type"}']) });
    expect(bare.status).toBe(201);
  });

  test("a deeply nested body (500 000 levels in under 1 MB) is refused at once and the server stays responsive", async () => {
    const deep = `{"messages":[],"forwardedProps":${"[".repeat(500_000)}${"]".repeat(500_000)}}`;
    const big = await startGateway({ TURNKEY_MAX_BODY_BYTES: String(2 * 1024 * 1024) });
    try {
      const tok = await big.token("alice");
      await big.api("POST", base, { token: tok, body: { name: "s" } });
      const refused = await big.api("POST", `${base}/s/agui/run`, { token: tok, body: deep });
      expect([refused.status, refused.body.code]).toEqual([400, "invalid_json"]);
      expect(big.server.deps.activeRuns.size).toBe(0);
      // Depth 100 is still fine.
      const ok = await big.api("POST", `${base}/s/agui/run`, { token: tok, body: `{"messages":[],"state":${"[".repeat(99)}${"]".repeat(99)}}` });
      expect(ok.status).toBe(202);
      await big.idle();
    } finally {
      await big.stop();
    }
  });

  test("a client cannot choose the owner: extra fields are dropped, the caller owns the session", async () => {
    const r = await gw.api("POST", base, { token: alice, body: { name: "mine", ownerId: "mallory", owner: "mallory" } });
    expect(r.status).toBe(201);
    expect(r.body.ownerId).toBe("alice");
  });

  test("a secret in a rejected body is never echoed", async () => {
    const secret = "ghp_SHOULD_NOT_ECHO_1234567890";
    const r = await gw.api("PUT", "/api/users/me/credentials/github", { token: alice, body: { token: secret, extra: secret } });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).not.toContain(secret);
    const r2 = await gw.api("PUT", "/api/users/me/credentials/github", { token: alice, body: { token: 12345678 } });
    expect(r2.status).toBe(400);
    expect(JSON.stringify(r2.body)).not.toContain("12345678");
  });

  test("oversized bodies → 413 payload_too_large", async () => {
    const big = { messages: [{ id: "1", role: "user", content: "x".repeat(100_000) }] };
    const r = await gw.api("POST", `${base}/s/agui/run`, { token: alice, body: big });
    expect(r.status).toBe(413);
    expect(r.body.code).toBe("payload_too_large");
  });

  test("oversized chunked body without Content-Length is refused too", async () => {
    const chunk = new TextEncoder().encode("x".repeat(16384));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        // 5 × 16 KiB: over the 64 KiB limit but under Bun's own backstop (2 × the limit).
        if (sent++ < 5) c.enqueue(chunk);
        else c.close();
      },
    });
    const res = await fetch(`${gw.url}${base}/s/agui/run`, { method: "POST", headers: { authorization: `Bearer ${alice}`, "content-type": "application/json" }, body: stream, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe("payload_too_large");
  });

  test("bad Authorization headers → 401 with WWW-Authenticate", async () => {
    for (const h of ["Basic YWxpY2U6cHc=", "Bearer", "Bearer not.a.jwt", `Bearer ${alice}x`]) {
      const res = await fetch(`${gw.url}${base}/s`, { headers: { authorization: h } });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
      const body = (await res.json()) as { code: string };
      expect(["invalid_token", "unauthenticated"]).toContain(body.code);
    }
  });

  test("the server keeps serving", async () => {
    const r = await gw.api("GET", "/healthz");
    expect(r.status).toBe(200);
    expect((await gw.api("GET", "/readyz")).status).toBe(200);
    expect((await gw.api("GET", `${base}/s`, { token: alice })).status).toBe(200);
  });
});
