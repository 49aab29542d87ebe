/**
 * Prometheus metrics for `GET /metrics` (issue 4 §5 "cache hits and misses are counted"), built on
 * prom-client with a private registry (no globals, no default process metrics).
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `turnkey_turns_started_total` | counter | - |
 * | `turnkey_turns_ended_total` | counter | `outcome` (`finished`/`error`/`aborted`/`timeout`) |
 * | `turnkey_credential_decisions_total` | counter | `decision` (`allow`/`deny`), `reason` (the RBAC reason enum), `provider` |
 * | `turnkey_active_runs` | gauge | - |
 * | `turnkey_kube_cache_hits_total` / `_misses_total` | counter | `cache` (`sessions`/`sars`/`token_reviews`) |
 * | `turnkey_kube_cache_entries` | gauge | `cache` |
 *
 * Turn and credential counters are derived from audit records (every decision and every turn
 * start/end is audited, DESIGN §7 rule 5), by wrapping the audit sink: one place to count, no
 * second code path to forget. Labels are closed sets only: never a user ID, token, project or
 * session name (DESIGN §7 rule 3; unbounded label values would also explode the series count).
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { AuditInput, AuditSink } from "../audit/types.ts";
import { PROVIDERS } from "../credentials/providers.ts";

/** Sources read at scrape time. */
export interface GatewayMetricsSources {
  /** Number of live turns (`ActiveRunMap.size`). */
  activeRuns?: () => number;
  /**
   * The Kubernetes backend's flat counters (`KubernetesBackend.metrics()`): keys
   * `kube.<cache>.cache_hits|cache_misses|cache_size`. Absent on the embedded backend.
   */
  kube?: () => Record<string, number>;
}

/** What `createGatewayMetrics` returns. */
export interface GatewayMetrics {
  /** `Content-Type` of `render()` (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /** The exposition text of every metric. */
  render(): Promise<string>;
  /** Wrap an audit sink so each record it writes is also counted; the record itself is unchanged. */
  countAudit(sink: AuditSink): AuditSink;
}

const OUTCOMES = new Set(["finished", "error", "aborted", "timeout"]);
const KNOWN_PROVIDERS: ReadonlySet<string> = new Set(PROVIDERS);
/** RBAC reasons are snake_case enum values (src/rbac/credential-access.ts); anything else is `other`. */
const REASON = /^[a-z_]{1,40}$/;

/**
 * Build the registry and its metrics.
 * @example
 * const metrics = createGatewayMetrics({ activeRuns: () => activeRuns.size, kube: () => kube.metrics() });
 * const audit = metrics.countAudit(createAuditSink(...));
 * const text = await metrics.render(); // "# HELP turnkey_turns_started_total ..."
 */
export function createGatewayMetrics(sources: GatewayMetricsSources = {}): GatewayMetrics {
  const registry = new Registry();
  const registers = [registry];
  const turnsStarted = new Counter({ name: "turnkey_turns_started_total", help: "Turns started (active run registered).", registers });
  const turnsEnded = new Counter({ name: "turnkey_turns_ended_total", help: "Turns ended, after teardown, by outcome.", labelNames: ["outcome"], registers });
  const decisions = new Counter({
    name: "turnkey_credential_decisions_total",
    help: "Credential endpoint decisions (DESIGN 2.3) by decision, RBAC reason and provider.",
    labelNames: ["decision", "reason", "provider"],
    registers,
  });
  if (sources.activeRuns) {
    const activeRuns = sources.activeRuns;
    new Gauge({ name: "turnkey_active_runs", help: "Turns running now.", registers, collect() { this.set(activeRuns()); } });
  }
  if (sources.kube) {
    const kube = sources.kube;
    // The backend keeps monotonic counters of its own; mirror them at scrape time.
    const mirror = (suffix: "cache_hits" | "cache_misses" | "cache_size") => (metric: Counter<"cache"> | Gauge<"cache">) => {
      const flat = kube();
      metric.reset();
      for (const [key, value] of Object.entries(flat)) {
        const m = /^kube\.([a-z_]+)\.(cache_hits|cache_misses|cache_size)$/.exec(key);
        if (!m || m[2] !== suffix) continue;
        if (metric instanceof Counter) metric.inc({ cache: m[1]! }, value);
        else metric.set({ cache: m[1]! }, value);
      }
    };
    const hits = mirror("cache_hits");
    const misses = mirror("cache_misses");
    const size = mirror("cache_size");
    new Counter({ name: "turnkey_kube_cache_hits_total", help: "Kubernetes backend cache hits.", labelNames: ["cache"], registers, collect() { hits(this); } });
    new Counter({ name: "turnkey_kube_cache_misses_total", help: "Kubernetes backend cache misses (each one an API call).", labelNames: ["cache"], registers, collect() { misses(this); } });
    new Gauge({ name: "turnkey_kube_cache_entries", help: "Entries in the Kubernetes backend caches.", labelNames: ["cache"], registers, collect() { size(this); } });
  }

  const count = (r: AuditInput) => {
    if (r.event === "turn.start") turnsStarted.inc();
    else if (r.event === "turn.end") turnsEnded.inc({ outcome: r.outcome && OUTCOMES.has(r.outcome) ? r.outcome : "other" });
    else if (r.event === "credential.access")
      decisions.inc({
        decision: r.decision === "allow" ? "allow" : "deny",
        reason: r.reason && REASON.test(r.reason) ? r.reason : "other",
        provider: r.provider && KNOWN_PROVIDERS.has(r.provider) ? r.provider : "other",
      });
  };

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    countAudit: (sink) => ({
      write(input) {
        sink.write(input);
        try {
          count(input);
        } catch {
          /* counting must never break auditing or the request */
        }
      },
      hash: (v) => sink.hash(v),
      close: () => sink.close(),
    }),
  };
}
