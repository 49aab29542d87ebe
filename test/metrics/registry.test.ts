import { describe, expect, test } from "bun:test";
import { createGatewayMetrics } from "../../src/metrics/registry.ts";
import type { AuditInput, AuditSink } from "../../src/audit/types.ts";

function sink(): AuditSink & { written: AuditInput[] } {
  const written: AuditInput[] = [];
  return { written, write: (r) => void written.push(r), hash: (v) => `h(${v})`, close: async () => {} };
}

describe("createGatewayMetrics", () => {
  test("counts turns and credential decisions from audit records, passing every record through unchanged", async () => {
    const m = createGatewayMetrics({ activeRuns: () => 2 });
    const inner = sink();
    const audit = m.countAudit(inner);
    const base = { project: "demo", session: "pairing", principalSubject: "user:alice-example.com", effectiveUserId: "alice-example.com" };
    const records: AuditInput[] = [
      { ...base, event: "turn.start", run: "r1" },
      { ...base, event: "turn.end", run: "r1", outcome: "finished" },
      { ...base, event: "turn.end", run: "r2", outcome: "weird value with spaces" },
      { ...base, event: "credential.access", provider: "github", decision: "allow", reason: "turn_sender" },
      { ...base, event: "credential.access", provider: "github", decision: "deny", reason: "not_sender" },
      { ...base, event: "credential.access", provider: "made-up", decision: "deny", reason: "Not An Enum!" },
    ];
    for (const r of records) audit.write(r);
    expect(inner.written).toEqual(records);
    expect(audit.hash("x")).toBe("h(x)");

    const text = await m.render();
    expect(m.contentType).toStartWith("text/plain");
    const rows: [string, number][] = [
      ["turnkey_turns_started_total", 1],
      ['turnkey_turns_ended_total{outcome="finished"}', 1],
      ['turnkey_turns_ended_total{outcome="other"}', 1],
      ['turnkey_credential_decisions_total{decision="allow",reason="turn_sender",provider="github"}', 1],
      ['turnkey_credential_decisions_total{decision="deny",reason="not_sender",provider="github"}', 1],
      ['turnkey_credential_decisions_total{decision="deny",reason="other",provider="other"}', 1],
      ["turnkey_active_runs", 2],
    ];
    for (const [series, value] of rows) expect(text).toContain(`${series} ${value}\n`);
    // Closed label sets only: no user IDs, project or session names.
    for (const leak of ["alice", "demo", "pairing", "made-up", "weird"]) expect(text).not.toContain(leak);
  });

  test("mirrors the Kubernetes backend's cache counters at scrape time", async () => {
    let hits = 3;
    const m = createGatewayMetrics({
      kube: () => ({ "kube.sessions.cache_hits": hits, "kube.sessions.cache_misses": 1, "kube.sessions.cache_size": 1, "kube.token_reviews.cache_hits": 5, "kube.sars.cache_misses": 2 }),
    });
    expect(await m.render()).toContain('turnkey_kube_cache_hits_total{cache="sessions"} 3\n');
    hits = 7;
    const text = await m.render();
    expect(text).toContain('turnkey_kube_cache_hits_total{cache="sessions"} 7\n');
    expect(text).toContain('turnkey_kube_cache_hits_total{cache="token_reviews"} 5\n');
    expect(text).toContain('turnkey_kube_cache_misses_total{cache="sars"} 2\n');
    expect(text).toContain('turnkey_kube_cache_entries{cache="sessions"} 1\n');
  });

  test("without a kube source there are no kube series; counting a minimal record never throws", async () => {
    const m = createGatewayMetrics();
    expect(await m.render()).not.toContain("turnkey_kube_");
    const audit = m.countAudit({ write: () => {}, hash: (v) => v, close: async () => {} });
    expect(() => audit.write({ event: "turn.start", project: "p", session: "s", principalSubject: "user:x" })).not.toThrow();
  });
});
