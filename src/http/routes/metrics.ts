/**
 * `GET /metrics` → 200 Prometheus text exposition (src/metrics/registry.ts: turns, credential
 * decisions, active runs, Kubernetes cache hits/misses), or 404 `not_found` when the gateway was
 * built without metrics. Unauthenticated, like the probes: it holds no secrets and no user IDs,
 * only counters with closed label sets; restrict it at the network layer if even counts are private.
 */
import { Elysia } from "elysia";
import type { AppDeps } from "../context.ts";
import { errorResponse } from "../errors.ts";

/** `GET /metrics` (module doc). */
export const metricsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "metricsRoutes" }).get("/metrics", async () => {
    if (!deps.metrics) return errorResponse(404, "not_found", "metrics are not enabled");
    return new Response(await deps.metrics.render(), { headers: { "content-type": deps.metrics.contentType, "cache-control": "no-store" } });
  });
