/**
 * Edge validation schemas (Elysia `t`, i.e. TypeBox): the domain only ever sees valid data.
 */
import { t } from "elysia";
import { DNS1123_LABEL_PATTERN } from "../names.ts";

/** A DNS-1123 label (DESIGN §1): project and session names. */
export const Dns1123 = t.String({ pattern: DNS1123_LABEL_PATTERN, minLength: 1, maxLength: 63 });

/** `:project` and `:session` path parameters. */
export const SessionParams = t.Object({ project: Dns1123, session: Dns1123 });

/** Run and thread IDs: no `/` (they are part of the active-run key), at most 128 characters. */
export const RunIdString = t.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]*$", minLength: 1, maxLength: 128 });

/**
 * The edge shape of a RunAgentInput (AG-UI): `messages` is required; threadId defaults to the
 * session name and runId to a UUID v4; the rest defaults to empty. The full AG-UI schema is
 * checked after defaults are filled in.
 */
export const RunAgentInputBody = t.Object(
  {
    threadId: t.Optional(RunIdString),
    runId: t.Optional(RunIdString),
    parentRunId: t.Optional(t.String({ maxLength: 128 })),
    messages: t.Array(t.Object({ id: t.String({ minLength: 1, maxLength: 256 }), role: t.String({ minLength: 1, maxLength: 32 }) }, { additionalProperties: true }), { maxItems: 10000 }),
    state: t.Optional(t.Any()),
    tools: t.Optional(t.Array(t.Any())),
    context: t.Optional(t.Array(t.Any())),
    forwardedProps: t.Optional(t.Any()),
  },
  { additionalProperties: true },
);
