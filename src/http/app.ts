/**
 * The Elysia application: one plugin per route group, composed here, plus the error mapping and
 * the request-size guard. Build with `createApp(deps)`; `listen` happens in src/server.ts.
 */
import { Elysia } from "elysia";
import type { AppDeps } from "./context.ts";
import { errorResponse, toErrorResponse } from "./errors.ts";
import { readJsonBody } from "./body.ts";
import { sessionRoutes } from "./routes/sessions.ts";
import { sessionCredentialRoutes, userCredentialRoutes } from "./routes/credentials.ts";
import { aguiRoutes } from "./routes/agui.ts";
import { healthRoutes } from "./routes/health.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { aguiLiveRoutes } from "./routes/agui-live.ts";
import { aguiWsRoutes } from "./routes/agui-ws.ts";

/** Compose the app. Every error leaves as `{error, code}`; unexpected ones as a bare 500. */
export function createApp(deps: AppDeps) {
  return new Elysia({ name: "turnkey" })
    .onRequest(({ request }) => {
      // Refuse oversized bodies before reading them; Bun's maxRequestBodySize backs this up
      // for chunked bodies without Content-Length.
      const len = Number(request.headers.get("content-length") ?? "0");
      if (Number.isFinite(len) && len > deps.config.maxBodyBytes)
        return errorResponse(413, "payload_too_large", `request body exceeds ${deps.config.maxBodyBytes} bytes`);
    })
    // Global: hooks are local to an Elysia instance by default, and the routes live in plugins.
    .onParse({ as: "global" }, ({ request, contentType }) => {
      if (contentType.startsWith("application/json") || contentType.endsWith("+json")) return readJsonBody(request, deps.config.maxBodyBytes);
    })
    .onError(({ code, error }) => {
      const { response, internal } = toErrorResponse(error, code);
      if (internal) deps.logger.error({ errName: (error as Error)?.name, code }, "unhandled error");
      return response;
    })
    .use(healthRoutes(deps))
    .use(metricsRoutes(deps))
    .use(sessionRoutes(deps))
    .use(userCredentialRoutes(deps))
    .use(sessionCredentialRoutes(deps))
    .use(aguiRoutes(deps))
    .use(aguiLiveRoutes(deps))
    .use(aguiWsRoutes(deps));
}

/** The composed Elysia app type. */
export type App = ReturnType<typeof createApp>;
