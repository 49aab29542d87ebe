/**
 * Request-scoped helpers shared by the route plugins: authentication with the failure kept as
 * data (the credential RBAC table needs it), and the dependencies every plugin receives.
 */
import type { Config } from "../config.ts";
import { forbidden, TurnkeyError, unauthenticated } from "../errors.ts";
import type { Authenticator, Principal } from "../identity/principal.ts";
import type { SessionStore } from "../sessions/types.ts";
import type { CredentialStore } from "../credentials/types.ts";
import type { ActiveRunMap } from "../sessions/active-runs.ts";
import type { SessionEventBus } from "../sessions/event-bus.ts";
import type { AuditSink } from "../audit/types.ts";
import type { TurnService } from "../runner/turn-service.ts";
import type { Logger } from "../log.ts";

/** Everything the HTTP layer needs; built by the composition root (src/server.ts). */
export interface AppDeps {
  config: Config;
  sessions: SessionStore;
  credentials: CredentialStore;
  authenticator: Authenticator;
  activeRuns: ActiveRunMap;
  turns: TurnService;
  bus: SessionEventBus;
  audit: AuditSink;
  logger: Logger;
  /** Public JWKS of the development issuer, when it runs (served at /.well-known/jwks.json). */
  jwks?: () => Promise<{ keys: object[] }>;
  /** Readiness probe: resolves true when the stores answer. */
  ready: () => Promise<boolean>;
  /** Prometheus exposition for `GET /metrics` (src/metrics/registry.ts); unset = 404. */
  metrics?: { readonly contentType: string; render(): Promise<string> };
}

/** Authentication outcome as data: `failure` carries the 401/503 reason. */
export type AuthResult =
  | { principal: Principal }
  | { failure: "unauthenticated" | "invalid_token" | "identity_unavailable"; error: TurnkeyError };

/** Minimal shape of Bun's server we use: the caller's address. */
export interface ServerLike {
  requestIP(req: Request): { address: string } | null;
}

/**
 * Authenticate a request, never throwing: the caller decides how a failure maps to a response.
 * Identity-provider outages are `identity_unavailable` (503), never a fallback (DESIGN §7 rule 4).
 */
export async function authenticate(deps: Pick<AppDeps, "authenticator">, request: Request, server: ServerLike | null): Promise<AuthResult> {
  try {
    const remoteAddress = server?.requestIP(request)?.address;
    const principal = await deps.authenticator.authenticate({ headers: request.headers, ...(remoteAddress ? { remoteAddress } : {}) });
    if (!principal) return { failure: "unauthenticated", error: unauthenticated() };
    return { principal };
  } catch (err) {
    if (err instanceof TurnkeyError) {
      if (err.status === 503) return { failure: "identity_unavailable", error: err };
      return { failure: "invalid_token", error: err };
    }
    return { failure: "identity_unavailable", error: new TurnkeyError(503, "identity_unavailable", "identity provider unavailable") };
  }
}

/** The authenticated principal, or throw its 401/503. */
export function requirePrincipal(auth: AuthResult): Principal {
  if ("failure" in auth) throw auth.error;
  return auth.principal;
}

/**
 * The authenticated human user. Turn tokens and service tokens may only read credentials;
 * they can never create sessions, share them, send turns or write credentials.
 * @throws TurnkeyError 401 without valid credentials, 403 for `turn`/`service` principals.
 */
export function requireUser(auth: AuthResult): Extract<Principal, { kind: "user" }> {
  const p = requirePrincipal(auth);
  if (p.kind !== "user") throw forbidden("this endpoint is for users; runner and turn tokens may only read credentials");
  return p;
}
