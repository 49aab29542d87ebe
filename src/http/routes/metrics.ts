/**
 * `GET /metrics` → 200 Prometheus text exposition (src/metrics/registry.ts: turns, credential
 * decisions, active runs, Kubernetes cache hits/misses), or 404 `not_found` when the gateway was
 * built without metrics. It holds no secrets and no user IDs, only counters with closed label
 * sets. Open like the probes, unless `TURNKEY_METRICS_TOKEN_FILE` names a bearer token: then any
 * other request gets 401 `unauthenticated` with `WWW-Authenticate: Bearer` (RFC 6750 §3).
 */
import { Elysia } from "elysia";
import type { AppDeps } from "../context.ts";
import { errorResponse } from "../errors.ts";
import { staticBearerChecker } from "../../identity/static-token.ts";

/**
 * `GET /metrics` (module doc).
 * @throws ConfigError (TURNKEY_METRICS_TOKEN_FILE) at creation when the token file is unreadable or unfit.
 */
export const metricsRoutes = (deps: AppDeps) => {
  const file = deps.config.metricsTokenFile;
  const allowed = file ? staticBearerChecker(file, "TURNKEY_METRICS_TOKEN_FILE") : () => true;
  return new Elysia({ name: "metricsRoutes" }).get("/metrics", async ({ request }) => {
    if (!allowed(request.headers)) return errorResponse(401, "unauthenticated", "metrics need the bearer token from TURNKEY_METRICS_TOKEN_FILE", { "WWW-Authenticate": 'Bearer realm="metrics"' });
    if (!deps.metrics) return errorResponse(404, "not_found", "metrics are not enabled");
    return new Response(await deps.metrics.render(), { headers: { "content-type": deps.metrics.contentType, "cache-control": "no-store" } });
  });
};
