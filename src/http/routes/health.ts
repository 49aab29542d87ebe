/**
 * Probes and discovery:
 * - `GET /healthz` → 200 `{status:"ok"}` while the process serves (liveness).
 * - `GET /readyz` → 200 `{status:"ready"}` when the stores answer, else 503 `{error, code:"store_unavailable"}`.
 * - `GET /.well-known/jwks.json` → the development issuer's public keys (embedded default only).
 */
import { Elysia } from "elysia";
import type { AppDeps } from "../context.ts";
import { errorResponse } from "../errors.ts";

/** Probe and discovery routes (module doc). */
export const healthRoutes = (deps: AppDeps) =>
  new Elysia({ name: "healthRoutes" })
    .get("/healthz", () => ({ status: "ok" }))
    .get("/readyz", async () => {
      const ok = await deps.ready().catch(() => false);
      return ok ? { status: "ready", activeRuns: deps.activeRuns.size } : errorResponse(503, "store_unavailable", "stores are not ready");
    })
    .get("/.well-known/jwks.json", async () => (deps.jwks ? deps.jwks() : errorResponse(404, "not_found", "no local issuer")));
