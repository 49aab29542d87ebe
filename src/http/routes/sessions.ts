/**
 * Session routes (issue 2 §5):
 * - `POST   /api/projects/:project/agentic-sessions` `{name}` → 201 session; owner = caller.
 * - `GET    /api/projects/:project/agentic-sessions` → `{items}` sessions the caller may read.
 * - `GET    /api/projects/:project/agentic-sessions/:session` → session (owner, edit, view).
 * - `PUT    /api/projects/:project/agentic-sessions/:session/collaborators/:userId` `{role}` (owner only).
 * - `DELETE /api/projects/:project/agentic-sessions/:session/collaborators/:userId` (owner only).
 * Errors: 400 invalid_name/validation_failed, 401, 403, 404 session_not_found, 405 read_only_backend, 409 session_exists.
 * A successful PUT or DELETE of a collaborator signals a membership change on the event bus's
 * internal channel, so open live views of the session re-check their watchers at once.
 */
import { Elysia, t } from "elysia";
import { forbidden, notFound, TurnkeyError } from "../../errors.ts";
import { sanitizeUserId } from "../../names.ts";
import { mayPerform, type SessionAction } from "../../rbac/session-access.ts";
import type { Session } from "../../sessions/types.ts";
import { subjectOf, type UserSubject } from "../../identity/principal.ts";
import { authenticate, requireUser, type AppDeps } from "../context.ts";
import { Dns1123, SessionParams } from "../schemas.ts";

/**
 * Load a session and check that `userId` may perform `action` on it. Strangers get 404-equivalent 403.
 * @param subject the caller's original username/groups (`subjectOf(principal)`), for access reviews.
 * @throws TurnkeyError 404 `session_not_found`, 403 `forbidden`, 503 `store_unavailable`.
 */
export async function authorizeSession(
  deps: Pick<AppDeps, "sessions">,
  project: string,
  session: string,
  userId: string,
  action: SessionAction,
  subject?: UserSubject,
): Promise<Session> {
  const s = await deps.sessions.get(project, session);
  if (!s) throw notFound("session not found", "session_not_found");
  const role = await deps.sessions.roleOf(project, session, userId, subject);
  if (!mayPerform(role, action)) throw forbidden(`your role (${role}) does not allow ${action} on this session`);
  return s;
}

const readOnly = () => new TurnkeyError(405, "read_only_backend", "this backend does not allow changing sessions here; use the platform's own RBAC");

/** The session and collaborator routes as an Elysia plugin (see the module doc). */
export const sessionRoutes = (deps: AppDeps) =>
  new Elysia({ name: "sessionRoutes", prefix: "/api/projects/:project/agentic-sessions" })
    .post(
      "/",
      async ({ params, body, request, server, set }) => {
        const user = requireUser(await authenticate(deps, request, server));
        if (deps.sessions.readOnly) throw readOnly();
        const s = await deps.sessions.create(params.project, body.name, { userId: user.userId, userName: user.userName });
        set.status = 201;
        return s;
      },
      { params: t.Object({ project: Dns1123 }), body: t.Object({ name: Dns1123 }, { additionalProperties: false }) },
    )
    .get(
      "/",
      async ({ params, request, server }) => {
        const user = requireUser(await authenticate(deps, request, server));
        const all = await deps.sessions.list(params.project);
        const visible: Session[] = [];
        for (const s of all) if (mayPerform(await deps.sessions.roleOf(params.project, s.name, user.userId, subjectOf(user)), "read")) visible.push(s);
        return { items: visible };
      },
      { params: t.Object({ project: Dns1123 }) },
    )
    .get(
      "/:session",
      async ({ params, request, server }) => {
        const user = requireUser(await authenticate(deps, request, server));
        return authorizeSession(deps, params.project, params.session, user.userId, "read", subjectOf(user));
      },
      { params: SessionParams },
    )
    .put(
      "/:session/collaborators/:userId",
      async ({ params, body, request, server }) => {
        const user = requireUser(await authenticate(deps, request, server));
        if (deps.sessions.readOnly) throw readOnly();
        await authorizeSession(deps, params.project, params.session, user.userId, "manage", subjectOf(user));
        const target = sanitizeUserId(params.userId);
        if (!target) throw new TurnkeyError(400, "validation_failed", "userId is empty after sanitising");
        const s = await deps.sessions.setCollaborator(params.project, params.session, target, body.role);
        deps.bus.membershipChanged(params.project, params.session);
        deps.audit.write({ event: "session.share", project: params.project, session: params.session, role: body.role, principalSubject: `user:${user.userId}`, effectiveUserId: target });
        return s;
      },
      {
        params: t.Object({ project: Dns1123, session: Dns1123, userId: t.String({ minLength: 1, maxLength: 253 }) }),
        body: t.Object({ role: t.Union([t.Literal("edit"), t.Literal("view")]) }, { additionalProperties: false }),
      },
    )
    .delete(
      "/:session/collaborators/:userId",
      async ({ params, request, server }) => {
        const user = requireUser(await authenticate(deps, request, server));
        if (deps.sessions.readOnly) throw readOnly();
        await authorizeSession(deps, params.project, params.session, user.userId, "manage", subjectOf(user));
        const target = sanitizeUserId(params.userId);
        const s = await deps.sessions.removeCollaborator(params.project, params.session, target);
        deps.bus.membershipChanged(params.project, params.session);
        deps.audit.write({ event: "session.unshare", project: params.project, session: params.session, principalSubject: `user:${user.userId}`, effectiveUserId: target });
        return s;
      },
      { params: t.Object({ project: Dns1123, session: Dns1123, userId: t.String({ minLength: 1, maxLength: 253 }) }) },
    );
