/**
 * Credential routes.
 *
 * Self-service (user principals only; 405 `read_only_backend` where the platform owns them):
 * - `PUT    /api/users/me/credentials/:provider` body per provider (src/credentials/schemas.ts) → `{provider, updatedAt}`
 * - `GET    /api/users/me/credentials` → `{items: [{provider, updatedAt}]}` (never secret values)
 * - `DELETE /api/users/me/credentials/:provider` → 204, or 404 credential_not_found
 *
 * Runner-facing (DESIGN §2.3; the decision is src/rbac/credential-access.ts, every decision audited):
 * - `GET /api/projects/:project/agentic-sessions/:session/credentials/:provider` → upstream body,
 *   or 401/403/404/503 `{error, code}`. `X-Runner-Current-User` names the effective user; it can
 *   only narrow access, never widen it.
 */
import { Elysia, t } from "elysia";
import { credentialSecrets } from "../../credentials/turn-environment.ts";
import type { TurnContext } from "../../runner/types.ts";
import { badRequest, notFound, TurnkeyError } from "../../errors.ts";
import { isProvider, PROVIDERS, type ProviderName } from "../../credentials/providers.ts";
import { parseCredential } from "../../credentials/schemas.ts";
import { credentialResponse } from "../../credentials/responses.ts";
import { decideCredentialAccess } from "../../rbac/credential-access.ts";
import { principalSubject, subjectOf } from "../../identity/principal.ts";
import { sanitizeUserId } from "../../names.ts";
import type { SessionRole } from "../../sessions/types.ts";
import { authenticate, requireUser, type AppDeps } from "../context.ts";
import { errorResponse } from "../errors.ts";
import { Dns1123 } from "../schemas.ts";

function providerParam(raw: string): ProviderName {
  if (!isProvider(raw)) throw badRequest(`unknown provider; known providers: ${PROVIDERS.join(", ")}`, "unknown_provider");
  return raw;
}

const readOnly = () => new TurnkeyError(405, "read_only_backend", "this backend reads credentials from the platform; manage them there");

/** Self-service credential routes (module doc). */
export const userCredentialRoutes = (deps: AppDeps) =>
  new Elysia({ name: "userCredentialRoutes", prefix: "/api/users/me/credentials" })
    .get("/", async ({ request, server }) => {
      const user = requireUser(await authenticate(deps, request, server));
      return { items: await deps.credentials.list(user.userId) };
    })
    .put(
      "/:provider",
      async ({ params, body, request, server }) => {
        const user = requireUser(await authenticate(deps, request, server));
        const provider = providerParam(params.provider);
        if (deps.credentials.readOnly) throw readOnly();
        if (!deps.config.providers.includes(provider)) throw badRequest(`provider ${provider} is not enabled on this gateway`, "unknown_provider");
        const record = parseCredential(provider, body);
        await deps.credentials.put(user.userId, provider, record);
        deps.audit.write({ event: "credential.write", provider, principalSubject: `user:${user.userId}`, effectiveUserId: user.userId });
        const entry = (await deps.credentials.list(user.userId)).find((c) => c.provider === provider);
        return { provider, updatedAt: entry?.updatedAt ?? new Date().toISOString() };
      },
      { params: t.Object({ provider: t.String({ maxLength: 64 }) }), body: t.Unknown() },
    )
    .delete(
      "/:provider",
      async ({ params, request, server, set }) => {
        const user = requireUser(await authenticate(deps, request, server));
        const provider = providerParam(params.provider);
        if (deps.credentials.readOnly) throw readOnly();
        if (!(await deps.credentials.delete(user.userId, provider))) throw notFound("no credential stored for this provider", "credential_not_found");
        deps.audit.write({ event: "credential.delete", provider, principalSubject: `user:${user.userId}`, effectiveUserId: user.userId });
        set.status = 204;
        return;
      },
      { params: t.Object({ provider: t.String({ maxLength: 64 }) }) },
    );

/** The RBAC'd runner-facing credential route (module doc, DESIGN §2.3). */
export const sessionCredentialRoutes = (deps: AppDeps) =>
  new Elysia({ name: "sessionCredentialRoutes" }).get(
    "/api/projects/:project/agentic-sessions/:session/credentials/:provider",
    async ({ params, request, server }) => {
      const provider = providerParam(params.provider);
      // A provider this gateway does not enable is never loaded into a turn, so its values would
      // not be redacted from the stream either (found by a break-it review): not served at all.
      if (!deps.config.providers.includes(provider)) throw badRequest(`provider ${provider} is not enabled on this gateway`, "unknown_provider");
      const { project, session } = params;
      const auth = await authenticate(deps, request, server);
      const rawHeader = request.headers.get("x-runner-current-user");
      const runnerCurrentUser = rawHeader === null ? undefined : sanitizeUserId(rawHeader);

      let ownerId: string | null = null;
      let userRole: SessionRole | undefined;
      let turnRun: { userId: string; tokenId: string } | undefined;
      if ("principal" in auth) {
        const p = auth.principal;
        if (p.kind === "turn") {
          const run = deps.activeRuns.get(p.project, p.session, p.runId);
          if (run) turnRun = { userId: run.userId, tokenId: run.tokenId };
        } else {
          // Store failures propagate as 503 (fail closed).
          ownerId = (await deps.sessions.get(project, session))?.ownerId ?? null;
          if (p.kind === "user" && ownerId !== null) userRole = await deps.sessions.roleOf(project, session, p.userId, subjectOf(p));
        }
      }
      const decision = decideCredentialAccess({
        auth: "principal" in auth ? { principal: auth.principal } : { failure: auth.failure },
        project,
        session,
        ownerId,
        ...(runnerCurrentUser !== undefined ? { runnerCurrentUser } : {}),
        ...(turnRun !== undefined ? { turnRun } : {}),
        activeRunUserIds: deps.activeRuns.forSession(project, session).map((r) => r.userId),
        ...(userRole !== undefined ? { userRole } : {}),
      });
      const runId = "principal" in auth && auth.principal.kind === "turn" ? auth.principal.runId : undefined;
      deps.audit.write({
        event: "credential.access",
        project,
        session,
        ...(runId ? { run: runId } : {}),
        provider,
        decision: decision.allow ? "allow" : "deny",
        reason: decision.reason,
        principalSubject: "principal" in auth ? principalSubject(auth.principal) : "anonymous",
        ...(decision.effectiveUserId !== undefined ? { effectiveUserId: decision.effectiveUserId } : {}),
      });
      if (!decision.allow) {
        if ("failure" in auth) throw auth.error;
        return errorResponse(decision.status, decision.status === 404 ? "session_not_found" : decision.status === 401 ? "invalid_token" : "forbidden", DENY_MESSAGES[decision.reason] ?? "forbidden");
      }
      const record = await deps.credentials.get(decision.effectiveUserId, provider);
      if (!record) throw notFound(`${provider} is not configured for this user`, "credential_not_found");
      // What is served now may be newer than what the session's live turns started with: they
      // must redact it as well before anyone sees their events.
      deps.turns.noteServedSecrets(project, session, credentialSecrets({ [provider]: record } as TurnContext["credentials"]));
      return credentialResponse(provider, record, decision.effectiveUserId);
    },
    { params: t.Object({ project: Dns1123, session: Dns1123, provider: t.String({ maxLength: 64 }) }) },
  );

/** Client-facing texts for denials; they name the rule, never another user's ID. */
const DENY_MESSAGES: Partial<Record<string, string>> = {
  session_not_found: "session not found",
  turn_wrong_session: "this turn token belongs to another session",
  turn_not_active: "this turn token's run is no longer active",
  turn_token_superseded: "this turn token was not minted for the active run",
  turn_user_mismatch: "this turn token does not belong to the run's sender",
  effective_user_mismatch: "a turn may only read its own sender's credentials",
  no_active_run_for_user: "no active run in this session belongs to that user",
  service_wrong_session: "this service account belongs to another session",
  not_sender: "you may only read your own credentials",
  cannot_send_turns: "your role in this session does not allow sending turns",
};
