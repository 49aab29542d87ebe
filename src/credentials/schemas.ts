/**
 * TypeBox schemas of the self-service credential PUT bodies, one per provider, shared by the HTTP
 * layer (Elysia's `t` is TypeBox) and the CLI. Strict: unknown properties are rejected, every
 * string is bounded, URLs must be http(s), and no string may contain control characters (a
 * newline in `userName` would otherwise inject lines into the per-turn gitconfig, DESIGN §3).
 * Secret fields (tokens, keys, passwords) also may not contain whitespace.
 *
 * Only `pattern` and length keywords are used (no `format`), so the schemas behave the same under
 * `Value.Check` and under Elysia without registering formats.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { ValueErrorType, type ValueError } from "@sinclair/typebox/errors";
import { badRequest } from "../errors.ts";
import { isProvider, type ProviderName } from "./providers.ts";
import type { CredentialRecords } from "./types.ts";

/** Largest accepted secret (token, key, password), in characters: 8 KiB. */
export const MAX_SECRET_CHARS = 8192;
/** Largest accepted URL, in characters. */
export const MAX_URL_CHARS = 2048;

// The `description` of a patterned string is what the error says the value must be.
const NO_CONTROL = "^[^\\u0000-\\u001f\\u007f]*$";
const Secret = () =>
  Type.String({ minLength: 1, maxLength: MAX_SECRET_CHARS, pattern: "^[^\\s\\u0000-\\u001f\\u007f]+$", description: "free of whitespace and control characters" });
const Text = (maxLength: number) =>
  Type.String({ minLength: 1, maxLength, pattern: NO_CONTROL, description: "free of control characters" });
const HttpUrl = () =>
  Type.String({ maxLength: MAX_URL_CHARS, pattern: "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#]+[^\\s\\u0000-\\u001f\\u007f]*$", description: "an http(s) URL" });
const Email = () =>
  Type.String({ maxLength: 254, pattern: "^[^\\s@\\u0000-\\u001f\\u007f]+@[^\\s@\\u0000-\\u001f\\u007f]+$", description: "an email address" });
/** RFC 3339 date-time, e.g. `2025-01-02T03:04:05Z` or with an offset and fractional seconds. */
const DateTime = () =>
  Type.String({
    maxLength: 64,
    pattern:
      "^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])[Tt]([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d{1,9})?([Zz]|[+-]([01]\\d|2[0-3]):[0-5]\\d)$",
    description: "an ISO 8601 date-time such as 2025-01-02T03:04:05Z",
  });
const strict = { additionalProperties: false } as const;

/** github: `{token, userName?, email?}`. */
export const GithubCredentialSchema = Type.Object(
  { token: Secret(), userName: Type.Optional(Text(256)), email: Type.Optional(Email()) },
  strict,
);
/** gitlab: `{token, instanceUrl?, userName?, email?}`; `instanceUrl` defaults to gitlab.com downstream. */
export const GitlabCredentialSchema = Type.Object(
  { token: Secret(), instanceUrl: Type.Optional(HttpUrl()), userName: Type.Optional(Text(256)), email: Type.Optional(Email()) },
  strict,
);
/** jira: `{url, email, apiToken}`. */
export const JiraCredentialSchema = Type.Object({ url: HttpUrl(), email: Email(), apiToken: Secret() }, strict);
/** google: `{accessToken, refreshToken?, email, scopes?, expiresAt}`; `expiresAt` RFC 3339. */
export const GoogleCredentialSchema = Type.Object(
  {
    accessToken: Secret(),
    refreshToken: Type.Optional(Secret()),
    email: Email(),
    scopes: Type.Optional(Type.Array(Text(512), { maxItems: 64 })),
    expiresAt: DateTime(),
  },
  strict,
);
/** coderabbit: `{apiKey}`. */
export const CoderabbitCredentialSchema = Type.Object({ apiKey: Secret() }, strict);
/** gerrit: `{instances: [{name, url, username, httpPassword}]}`, 1-32 instances, names unique. */
export const GerritCredentialSchema = Type.Object(
  {
    instances: Type.Array(
      Type.Object({ name: Text(128), url: HttpUrl(), username: Text(256), httpPassword: Secret() }, strict),
      { minItems: 1, maxItems: 32 },
    ),
  },
  strict,
);

/** Provider → PUT body schema. */
export const CREDENTIAL_SCHEMAS = {
  github: GithubCredentialSchema,
  gitlab: GitlabCredentialSchema,
  jira: JiraCredentialSchema,
  google: GoogleCredentialSchema,
  coderabbit: CoderabbitCredentialSchema,
  gerrit: GerritCredentialSchema,
} as const satisfies Record<ProviderName, TSchema>;

// Compile-time guarantee that a valid body is a storable record of the same provider.
type Assignable<A extends B, B> = [A, B];
/** Compile-time only: each schema's static type is assignable to the provider's record type. */
export type SchemasMatchRecords = [
  Assignable<Static<typeof GithubCredentialSchema>, CredentialRecords["github"]>,
  Assignable<Static<typeof GitlabCredentialSchema>, CredentialRecords["gitlab"]>,
  Assignable<Static<typeof JiraCredentialSchema>, CredentialRecords["jira"]>,
  Assignable<Static<typeof GoogleCredentialSchema>, CredentialRecords["google"]>,
  Assignable<Static<typeof CoderabbitCredentialSchema>, CredentialRecords["coderabbit"]>,
  Assignable<Static<typeof GerritCredentialSchema>, CredentialRecords["gerrit"]>,
];

/**
 * Validate a PUT body for `provider` and return it as that provider's record (a deep copy).
 * @throws TurnkeyError 400 `unknown_provider` for a provider name not in `PROVIDERS`; 400
 *   `validation_failed` whose message names the first bad field as a path (`token`,
 *   `instances[0].url`, `body` for the whole body) and says what it must be. The message never
 *   contains the field's value.
 * @example
 * const record = parseCredential("github", await req.json()); // GithubCredential
 */
export function parseCredential<P extends ProviderName>(provider: P, body: unknown): CredentialRecords[P] {
  if (!isProvider(provider)) throw badRequest("unknown credential provider", "unknown_provider");
  const schema: TSchema = CREDENTIAL_SCHEMAS[provider];
  const first = Value.Errors(schema, body).First();
  if (first) throw badRequest(`invalid credential: ${describe(first)}`, "validation_failed");
  // Checks a pattern cannot express.
  if (provider === "google") {
    const { expiresAt } = body as { expiresAt: string };
    if (Number.isNaN(Date.parse(expiresAt))) throw invalid("expiresAt", "must be a real calendar date-time");
  }
  if (provider === "gerrit") {
    const seen = new Set<string>();
    (body as { instances: { name: string }[] }).instances.forEach((inst, i) => {
      if (seen.has(inst.name)) throw invalid(`instances[${i}].name`, "must be unique among instances");
      seen.add(inst.name);
    });
  }
  for (const [field, url] of urlsOf(provider, body)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalid(field, "must be an http(s) URL");
    }
    // A password in a URL is a secret the scrubber does not know about (it is not a secret field).
    if (parsed.username || parsed.password) throw invalid(field, "must not contain a user name or password; use the credential fields");
  }
  return structuredClone(body) as CredentialRecords[P];
}

function urlsOf(provider: ProviderName, body: unknown): [string, string][] {
  const b = body as Record<string, unknown>;
  switch (provider) {
    case "gitlab":
      return typeof b.instanceUrl === "string" ? [["instanceUrl", b.instanceUrl]] : [];
    case "jira":
      return [["url", b.url as string]];
    case "gerrit":
      return (b.instances as { url: string }[]).map((inst, i) => [`instances[${i}].url`, inst.url]);
    default:
      return [];
  }
}

function invalid(field: string, must: string) {
  return badRequest(`invalid credential: ${field} ${must}`, "validation_failed");
}

/**
 * `/instances/0/url` → `instances[0].url`; `""` → `body`. An unknown property's name comes from the
 * caller, so it is cut to 64 chars and every char outside `[A-Za-z0-9_.-]` becomes `?`.
 */
function fieldName(path: string): string {
  if (!path) return "body";
  let out = "";
  for (const raw of path.split("/").slice(1)) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~").slice(0, 64).replace(/[^A-Za-z0-9_.-]/g, "?");
    out += /^\d+$/.test(seg) ? `[${seg}]` : out ? `.${seg}` : seg;
  }
  return out;
}

/** Words for one TypeBox error, built from the schema only (never from `error.value`). */
function describe(e: ValueError): string {
  const field = fieldName(e.path);
  const s = e.schema as { maxLength?: number; minLength?: number; maxItems?: number; minItems?: number; description?: string };
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `${field} is required`;
    case ValueErrorType.ObjectAdditionalProperties:
      return `${field} is not an allowed field`;
    case ValueErrorType.Object:
      return `${field} must be a JSON object`;
    case ValueErrorType.Array:
      return `${field} must be an array`;
    case ValueErrorType.ArrayMinItems:
      return `${field} must have at least ${s.minItems} item(s)`;
    case ValueErrorType.ArrayMaxItems:
      return `${field} must have at most ${s.maxItems} items`;
    case ValueErrorType.String:
      return `${field} must be a string`;
    case ValueErrorType.StringMinLength:
      return `${field} must not be empty`;
    case ValueErrorType.StringMaxLength:
      return `${field} must be at most ${s.maxLength} characters`;
    case ValueErrorType.StringPattern:
      return `${field} must be ${s.description ?? "well-formed"}`;
    default:
      return `${field} is invalid`;
  }
}
