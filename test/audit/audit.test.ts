import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { AUDIT_KEY_FILE, AUDIT_LOG_FILE, createAuditSink } from "../../src/audit/audit.ts";
import type { AuditInput } from "../../src/audit/types.ts";

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "turnkey-audit-"))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const logs: { level: string; obj: object; msg?: string }[] = [];
const logger = {
  error: (obj: object, msg?: string) => void logs.push({ level: "error", obj, ...(msg ? { msg } : {}) }),
  warn: (obj: object, msg?: string) => void logs.push({ level: "warn", obj, ...(msg ? { msg } : {}) }),
} as never;
beforeEach(() => (logs.length = 0));

const decision: AuditInput = {
  event: "credential.access", project: "proj", session: "sess", run: "run-1", provider: "github",
  decision: "allow", reason: "turn_sender", principalSubject: "turn:alice@example.com", effectiveUserId: "alice@example.com",
};
const lines = () => readFileSync(join(dir, AUDIT_LOG_FILE), "utf8").trim().split("\n").map((l) => JSON.parse(l));

describe("createAuditSink (file)", () => {
  test("writes one JSON line per record with hashed subjects only", async () => {
    const sink = createAuditSink({ dataDir: dir, mode: "file", logger });
    sink.write(decision);
    sink.write({ event: "turn.end", project: "proj", session: "sess", run: "run-1", outcome: "finished", durationMs: 12, principalSubject: "user:alice@example.com" });
    await sink.close();
    const raw = readFileSync(join(dir, AUDIT_LOG_FILE), "utf8");
    expect(raw).not.toContain("alice");
    expect(raw).not.toContain("principalSubject");
    expect(raw).not.toContain("effectiveUserId");
    const [a, b] = lines();
    expect(a).toMatchObject({ event: "credential.access", project: "proj", session: "sess", run: "run-1", provider: "github", decision: "allow", reason: "turn_sender" });
    expect(a.principal).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(a.effectiveUser).toBe(sink.hash("alice@example.com"));
    expect(a.principal).toBe(sink.hash("turn:alice@example.com"));
    expect(new Date(a.time).toISOString()).toBe(a.time);
    expect(b).not.toHaveProperty("effectiveUser");
    expect(b).toMatchObject({ event: "turn.end", outcome: "finished", durationMs: 12 });
  });

  test("files are 0600; hashes are stable across reopen; lines are appended", async () => {
    const first = createAuditSink({ dataDir: dir, mode: "file", logger });
    const h1 = first.hash("user:alice");
    first.write(decision);
    await first.close();
    const second = createAuditSink({ dataDir: dir, mode: "file", logger });
    expect(second.hash("user:alice")).toBe(h1);
    second.write(decision);
    await second.close();
    expect(lines()).toHaveLength(2);
    expect(lines()[0].principal).toBe(lines()[1].principal);
    expect(statSync(join(dir, AUDIT_LOG_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, AUDIT_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, AUDIT_KEY_FILE)).size).toBe(32);
  });

  test("different keys give different hashes (a key per installation)", () => {
    const other = mkdtempSync(join(tmpdir(), "turnkey-audit-"));
    try {
      const a = createAuditSink({ dataDir: dir, mode: "file", logger });
      const b = createAuditSink({ dataDir: other, mode: "file", logger });
      expect(a.hash("alice")).not.toBe(b.hash("alice"));
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  test("an existing looser log file is tightened to 0600", async () => {
    writeFileSync(join(dir, AUDIT_LOG_FILE), "", { mode: 0o644 });
    chmodSync(join(dir, AUDIT_LOG_FILE), 0o644);
    await createAuditSink({ dataDir: dir, mode: "file", logger }).close();
    expect(statSync(join(dir, AUDIT_LOG_FILE)).mode & 0o777).toBe(0o600);
  });

  test("a bad key file refuses to open (a gateway that cannot audit does not start)", () => {
    writeFileSync(join(dir, AUDIT_KEY_FILE), "short", { mode: 0o600 });
    expect(() => createAuditSink({ dataDir: dir, mode: "file", logger })).toThrow(ConfigError);
  });

  test("write never throws: after close, and on a failing destination", async () => {
    const sink = createAuditSink({ dataDir: dir, mode: "file", logger });
    await sink.close();
    await sink.close(); // idempotent
    expect(() => sink.write(decision)).not.toThrow();
    const failing = createAuditSink({ dataDir: dir, mode: "stdout", logger, stdout: { write: () => { throw new Error("EPIPE"); } } });
    expect(() => failing.write(decision)).not.toThrow();
    expect(logs.map((l) => l.level)).toEqual(["warn", "error"]);
    expect(JSON.stringify(logs)).not.toContain("alice");
  });
});

describe("createAuditSink (stdout)", () => {
  test("writes the same lines to stdout and no file", async () => {
    const out: string[] = [];
    const sink = createAuditSink({ dataDir: dir, mode: "stdout", logger, stdout: { write: (c: string) => out.push(c) } });
    sink.write(decision);
    await sink.close();
    expect(out).toHaveLength(1);
    expect(out[0]!.endsWith("\n")).toBe(true);
    expect(JSON.parse(out[0]!)).toMatchObject({ event: "credential.access", principal: sink.hash("turn:alice@example.com") });
    expect(() => statSync(join(dir, AUDIT_LOG_FILE))).toThrow();
  });

  test("creates the data dir when missing", () => {
    const nested = join(dir, "a", "b");
    createAuditSink({ dataDir: nested, mode: "stdout", logger, stdout: { write: () => true } });
    expect(statSync(join(nested, AUDIT_KEY_FILE)).size).toBe(32);
  });
});
