/**
 * Operator subcommands that work directly on the data directory (no running server needed):
 * `token`, `sessions`, `credentials`. They read the same `TURNKEY_*` variables as `serve`, plus
 * `--data-dir`. Each returns a process exit code (0 ok, 1 failure, 2 usage).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { loadConfig, type Config } from "../config.ts";
import { badRequest } from "../errors.ts";
import { isDns1123Label, sanitizeUserId } from "../names.ts";
import { isProvider, PROVIDERS } from "../credentials/providers.ts";
import { parseCredential } from "../credentials/schemas.ts";
import { DevIssuer } from "../identity/dev-issuer.ts";
import { openEmbeddedStores } from "../store/index.ts";
import type { CollaboratorRole } from "../sessions/types.ts";

/** Parse a subcommand's options; prints `help` and returns null for --help. */
function parseCommand<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T, help: string) {
  const parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, strict: true, allowPositionals: true });
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(help);
    return null;
  }
  return parsed;
}

const out = (v: unknown) => process.stdout.write(JSON.stringify(v, null, 2) + "\n");

/**
 * The configuration for an operator command. These commands work on the embedded store in the
 * data dir; with `TURNKEY_BACKEND=kubernetes` the gateway never reads it, so they refuse rather
 * than report a success that changes nothing (found by a break-it review).
 * @throws TurnkeyError 400 on the kubernetes backend; ConfigError for a bad setting.
 */
function configFor(dataDir: string | undefined): Config {
  const cfg = loadConfig(process.env, dataDir ? { dataDir } : {});
  if (cfg.backend !== "embedded")
    throw badRequest("operator commands work on the embedded store; with TURNKEY_BACKEND=kubernetes sessions, RBAC and credentials live in the cluster (kubectl)");
  return cfg;
}

/** Longest lifetime `turnkey token --ttl` mints, seconds (30 days). */
export const MAX_TOKEN_TTL_SECONDS = 30 * 24 * 3600;

function requireName(value: string | undefined, flag: string): string {
  if (!value) throw badRequest(`${flag} is required`);
  if (!isDns1123Label(value)) throw badRequest(`${flag} must be a DNS-1123 label (a-z, 0-9, '-', at most 63 characters)`, "invalid_name");
  return value;
}

function requireUser(value: string | undefined, flag = "--user"): string {
  if (!value) throw badRequest(`${flag} is required`);
  const id = sanitizeUserId(value);
  if (!id) throw badRequest(`${flag} has no usable character: user IDs keep only A-Z, a-z, 0-9, '.', '_' and '-'`);
  return id;
}

const TOKEN_HELP = `turnkey token: print a user token signed by the built-in development issuer

Usage: turnkey token --user ID [--name "Display Name"] [--email E] [--ttl SECONDS] [--data-dir DIR]

The token is valid for the gateway using the same data dir (default 12 h, at most 30 days).
`;

/** `turnkey token --user alice --name "Alice"` → prints a signed user JWT. */
export async function runTokenCommand(argv: string[]): Promise<number> {
  const p = parseCommand(argv, { user: { type: "string" }, name: { type: "string" }, email: { type: "string" }, ttl: { type: "string" }, "data-dir": { type: "string" } }, TOKEN_HELP);
  if (!p) return 0;
  const cfg = configFor(p.values["data-dir"]);
  if (cfg.jwksUrl || cfg.oidcDiscovery !== "off")
    throw badRequest(`${cfg.jwksUrl ? "TURNKEY_JWKS_URL" : "TURNKEY_OIDC_DISCOVERY"} is set: tokens come from your identity provider, not the development issuer`);
  const userId = requireUser(p.values.user);
  const ttl = p.values.ttl === undefined ? undefined : Number(p.values.ttl);
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TOKEN_TTL_SECONDS))
    throw badRequest(`--ttl must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECONDS} (30 days)`);
  const issuer = await DevIssuer.open(cfg);
  const token = await issuer.mint({ userId, ...(p.values.name ? { name: p.values.name } : {}), ...(p.values.email ? { email: p.values.email } : {}), ...(ttl ? { ttlSeconds: ttl } : {}) });
  process.stdout.write(token + "\n");
  return 0;
}

const SESSIONS_HELP = `turnkey sessions: manage sessions in the data dir (embedded backend)

Usage:
  turnkey sessions create --project P --session S --owner USER [--share USER:edit|view ...]
  turnkey sessions get    --project P --session S
  turnkey sessions list   --project P
  turnkey sessions share  --project P --session S --user USER --role edit|view
  turnkey sessions unshare --project P --session S --user USER
Options: --data-dir DIR (default ./.turnkey or TURNKEY_DATA_DIR)
`;

/** `turnkey sessions <create|get|list|share|unshare>`. */
export async function runSessionsCommand(argv: string[]): Promise<number> {
  const p = parseCommand(
    argv,
    { project: { type: "string" }, session: { type: "string" }, owner: { type: "string" }, share: { type: "string", multiple: true }, user: { type: "string" }, role: { type: "string" }, "data-dir": { type: "string" } },
    SESSIONS_HELP,
  );
  if (!p) return 0;
  const verb = p.positionals[0];
  if (!["create", "get", "list", "share", "unshare"].includes(verb ?? "")) {
    process.stderr.write(`turnkey sessions: unknown or missing verb\n\n${SESSIONS_HELP}`);
    return 2;
  }
  const stores = openEmbeddedStores(configFor(p.values["data-dir"]));
  try {
    const project = requireName(p.values.project, "--project");
    switch (verb) {
      case "create": {
        const session = requireName(p.values.session, "--session");
        const shares = (p.values.share ?? []).map((s) => {
          const [user, role, extra] = s.split(":");
          if (!user || (role !== "edit" && role !== "view") || extra !== undefined) throw badRequest(`--share expects USER:edit or USER:view, got ${JSON.stringify(s)}`);
          return { user: requireUser(user, "--share"), role: role as CollaboratorRole };
        });
        let s = await stores.sessions.create(project, session, { userId: requireUser(p.values.owner, "--owner") });
        for (const sh of shares) s = await stores.sessions.setCollaborator(project, session, sh.user, sh.role);
        out(s);
        return 0;
      }
      case "get": {
        const s = await stores.sessions.get(project, requireName(p.values.session, "--session"));
        if (!s) {
          process.stderr.write("turnkey: session not found\n");
          return 1;
        }
        out(s);
        return 0;
      }
      case "list":
        out(await stores.sessions.list(project));
        return 0;
      case "share": {
        const role = p.values.role;
        if (role !== "edit" && role !== "view") throw badRequest("--role must be edit or view");
        out(await stores.sessions.setCollaborator(project, requireName(p.values.session, "--session"), requireUser(p.values.user), role));
        return 0;
      }
      case "unshare":
        out(await stores.sessions.removeCollaborator(project, requireName(p.values.session, "--session"), requireUser(p.values.user)));
        return 0;
      default:
        process.stderr.write(`turnkey sessions: unknown or missing verb\n\n${SESSIONS_HELP}`);
        return 2;
    }
  } finally {
    stores.close();
  }
}

const CREDENTIALS_HELP = `turnkey credentials: manage stored credentials in the data dir (embedded backend)

Usage:
  turnkey credentials set    --user USER --provider P   < credential.json
  turnkey credentials list   --user USER
  turnkey credentials delete --user USER --provider P
Providers: ${PROVIDERS.join(", ")}. The JSON body is the same as PUT /api/users/me/credentials/:provider,
e.g. github {"token":"ghp_...","userName":"alice","email":"alice@example.com"}.
Values are encrypted at rest; list never prints them.
Options: --data-dir DIR (default ./.turnkey or TURNKEY_DATA_DIR)
`;

/** `turnkey credentials <set|list|delete>`; `set` reads the JSON record from stdin. */
export async function runCredentialsCommand(argv: string[]): Promise<number> {
  const p = parseCommand(argv, { user: { type: "string" }, provider: { type: "string" }, "data-dir": { type: "string" } }, CREDENTIALS_HELP);
  if (!p) return 0;
  const verb = p.positionals[0];
  if (!["set", "list", "delete"].includes(verb ?? "")) {
    process.stderr.write(`turnkey credentials: unknown or missing verb\n\n${CREDENTIALS_HELP}`);
    return 2;
  }
  const provider = p.values.provider;
  const needProvider = () => {
    if (!provider || !isProvider(provider)) throw badRequest(`--provider must be one of ${PROVIDERS.join(", ")}`, "unknown_provider");
    return provider;
  };
  const stores = openEmbeddedStores(configFor(p.values["data-dir"]));
  try {
    const user = requireUser(p.values.user);
    switch (verb) {
      case "set": {
        const prov = needProvider();
        const text = await new Response(Bun.stdin.stream()).text();
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw badRequest("stdin is not valid JSON", "invalid_json");
        }
        await stores.credentials.put(user, prov, parseCredential(prov, body));
        out({ user, provider: prov, stored: true });
        return 0;
      }
      case "list":
        out(await stores.credentials.list(user));
        return 0;
      case "delete": {
        const deleted = await stores.credentials.delete(user, needProvider());
        out({ user, provider, deleted });
        return deleted ? 0 : 1;
      }
      default:
        process.stderr.write(`turnkey credentials: unknown or missing verb\n\n${CREDENTIALS_HELP}`);
        return 2;
    }
  } finally {
    stores.close();
  }
}
