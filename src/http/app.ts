/**
 * The Elysia application: one plugin per route group, composed here, plus the error mapping and
 * the request-size guard. Build with `createApp(deps)`; `listen` happens in src/server.ts.
 */
import { Elysia } from "elysia";
import { TurnkeyError } from "../errors.ts";
import type { AppDeps } from "./context.ts";
import { errorResponse, toErrorResponse, unavailableLogger } from "./errors.ts";
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
  const logUnavailable = unavailableLogger(deps.logger);
  return new Elysia({ name: "turnkey" })
    .onRequest(({ request }) => {
      // Malformed percent-encoding in the path (`%ZZbob`, `mal%E0lory`, a truncated UTF-8
      // sequence): Elysia's lenient decoding turned such IDs into other user IDs, so refuse it
      // (found by a break-it review). Well-formed non-ASCII is decoded and then sanitised.
      if (!decodablePath(request.url)) return errorResponse(400, "bad_request", "malformed percent-encoding in the request path");
      // The live-view WebSocket route answers only a complete upgrade (RFC 6455 §4.1); anything
      // else would get Elysia's plain-text 400 or a misleading 404.
      if (WS_ROUTE.test(new URL(request.url).pathname) && !isWebSocketUpgrade(request))
        return errorResponse(426, "upgrade_required", "this route is a WebSocket: send a WebSocket upgrade (Upgrade: websocket, Sec-WebSocket-Key, Sec-WebSocket-Version: 13)", { Upgrade: "websocket" });
      // Refuse oversized bodies before reading them; Bun's maxRequestBodySize backs this up
      // for chunked bodies without Content-Length.
      const len = Number(request.headers.get("content-length") ?? "0");
      if (Number.isFinite(len) && len > deps.config.maxBodyBytes)
        return errorResponse(413, "payload_too_large", `request body exceeds ${deps.config.maxBodyBytes} bytes`);
    })
    // Global: hooks are local to an Elysia instance by default, and the routes live in plugins.
    // Bodies are JSON only. No Content-Type is read as JSON (clients that forget the header get a
    // clear invalid_json, not a confusing validation error); forms and multipart get 415.
    .onParse({ as: "global" }, ({ request, contentType }) => {
      const type = contentType.split(";")[0]!.trim().toLowerCase();
      if (type === "" || type === "application/json" || type.endsWith("+json")) return readJsonBody(request, deps.config.maxBodyBytes);
      throw new TurnkeyError(415, "unsupported_media_type", "request bodies must be JSON (Content-Type: application/json)");
    })
    .onError(({ code, error }) => {
      logUnavailable(error);
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

/** Paths of the live-view WebSocket route (src/http/routes/agui-ws.ts). */
const WS_ROUTE = /^\/api\/projects\/[^/]+\/agentic-sessions\/[^/]+\/agui\/ws\/?$/;

/** A GET with `Upgrade: websocket`, `Connection: upgrade`, a `Sec-WebSocket-Key` and version 13 (RFC 6455 §4.1). */
export function isWebSocketUpgrade(request: Request): boolean {
  const h = request.headers;
  return (
    request.method === "GET" &&
    (h.get("upgrade") ?? "").toLowerCase() === "websocket" &&
    (h.get("connection") ?? "").toLowerCase().split(",").some((t) => t.trim() === "upgrade") &&
    (h.get("sec-websocket-key") ?? "") !== "" &&
    h.get("sec-websocket-version") === "13"
  );
}

/** True when the path of `url` decodes as UTF-8 percent-encoding (RFC 3986 §2.1). */
export function decodablePath(url: string): boolean {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const end = url.search(/[?#]/);
  const path = start < 0 ? "/" : url.slice(start, end < 0 ? undefined : end);
  if (!path.includes("%")) return true;
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

/** The composed Elysia app type. */
export type App = ReturnType<typeof createApp>;
