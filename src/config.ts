/**
 * Configuration: defaults, then `TURNKEY_*` environment variables, then command-line flags
 * (highest wins). Validated once at start with TypeBox; a bad value throws `ConfigError`
 * naming the setting. `redactConfig` gives the loggable form (secrets replaced).
 */
import { Type as T, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, relative, resolve, join } from "node:path";
import { ConfigError } from "./errors.ts";
import { PROVIDERS, isProvider, type ProviderName } from "./credentials/providers.ts";
import { isLoopbackHttp } from "./identity/oidc-discovery.ts";

/** Path of the bundled example runner (the default `runnerCommand`). */
export const EXAMPLE_RUNNER = resolve(import.meta.dir, "../examples/runners/hello.ts");

/**
 * The default runner argv: from a source checkout, `bun examples/runners/hello.ts`; inside the
 * compiled binary (`bun build --compile`, where sources live in an embedded file system and
 * `process.execPath` is turnkey itself) the same runner as `turnkey example-runner`.
 */
export function defaultRunnerCommand(): string[] {
  return existsSync(EXAMPLE_RUNNER) ? [process.execPath, EXAMPLE_RUNNER] : [process.execPath, "example-runner"];
}

/** Largest uid/gid a runner may get (2^32 - 2; -1 means "unchanged" to the kernel). */
const MAX_ID = 4294967294;

const ConfigSchema = T.Object({
  host: T.String({ minLength: 1 }),
  port: T.Integer({ minimum: 0, maximum: 65535 }),
  dataDir: T.String({ minLength: 1 }),
  /** Public base URL of this gateway as runners reach it; default `http://<host>:<port>`. */
  publicUrl: T.Optional(T.String({ pattern: "^https?://" })),
  backend: T.Union([T.Literal("embedded"), T.Literal("kubernetes")]),
  /** argv of the local runner; default: the bundled example runner under the current Bun. */
  runnerCommand: T.Array(T.String({ minLength: 1 }), { minItems: 1 }),
  /** `stdio` (AG-UI JSON lines on stdout) or `http` (runner serves AG-UI on `$PORT`). */
  runnerProtocol: T.Union([T.Literal("stdio"), T.Literal("http")]),
  /** Remote runner URL template with `{project}` and `{session}`; set = remote mode. */
  runnerUrl: T.Optional(T.String({ pattern: "^https?://" })),
  /** File holding the bearer token `/metrics` requires (Prometheus `bearer_token_file`); unset = open. */
  metricsTokenFile: T.Optional(T.String({ minLength: 1 })),
  runnerSessionTokenFile: T.Optional(T.String()),
  runnerBotTokensFile: T.Optional(T.String()),
  /** Extra variable names a runner may inherit from the gateway's environment. */
  runnerEnvPassthrough: T.Array(T.String({ pattern: "^[A-Za-z_][A-Za-z0-9_]*$" })),
  /** Spawned runners' uid pool, `first-last` or one uid; unset = runners run as the gateway's user. */
  runnerUids: T.Optional(T.String({ pattern: "^[0-9]+(-[0-9]+)?$" })),
  /** Group of every pooled runner; unset = each runner's gid is its uid. */
  runnerGid: T.Optional(T.Integer({ minimum: 1, maximum: MAX_ID })),
  /**
   * Parent of the per-turn directories. Default `<dataDir>/turns`, or with `runnerUids`
   * `<tmpdir>/turnkey-turns-<gateway uid>` (runners cannot traverse the 0700 data dir).
   */
  turnsDir: T.Optional(T.String({ minLength: 1 })),
  turnTimeoutMs: T.Integer({ minimum: 1000 }),
  /** Concurrent turns across the gateway (each is a process); more → 429 `too_many_turns`. */
  maxConcurrentTurns: T.Integer({ minimum: 1 }),
  teardownGraceMs: T.Integer({ minimum: 0 }),
  heartbeatMs: T.Integer({ minimum: 100 }),
  /** A requester that reads nothing for this long while output waits is cut (`client_too_slow`), ms. */
  clientStallMs: T.Integer({ minimum: 100 }),
  /** Largest accepted request body, bytes. */
  maxBodyBytes: T.Integer({ minimum: 1024 }),
  providers: T.Array(T.Union(PROVIDERS.map((p) => T.Literal(p)))),
  /** Hosts the per-turn git credential helper answers for, per provider. */
  githubHosts: T.Array(T.String({ minLength: 1 })),
  gitlabHosts: T.Array(T.String({ minLength: 1 })),
  /** base64url 32-byte key for credentials at rest; unset = key file in the data dir. */
  masterKey: T.Optional(T.String()),
  /** Where audit records go: `file` (`<dataDir>/audit.log`) or `stdout`. */
  audit: T.Union([T.Literal("file"), T.Literal("stdout")]),
  logLevel: T.Union(["trace", "debug", "info", "warn", "error", "fatal", "silent"].map((l) => T.Literal(l))),
  /** User JWTs: pinned issuer and audience; JWKS URL unset = the built-in development issuer. */
  jwtIssuer: T.String({ minLength: 1 }),
  jwtAudience: T.String({ minLength: 1 }),
  jwksUrl: T.Optional(T.String({ pattern: "^https?://" })),
  /**
   * Where user-JWT keys come from when `jwksUrl` is unset: `off` (the development issuer on the
   * embedded backend; no JWT member on kubernetes), `issuer` (OIDC Discovery of `jwtIssuer`, an
   * external IdP, either backend) or `serviceaccount` (kubernetes only: discovery of the
   * cluster's service-account issuer, which must equal `jwtIssuer`).
   */
  oidcDiscovery: T.Union([T.Literal("off"), T.Literal("issuer"), T.Literal("serviceaccount")]),
  /**
   * Prepended to a JWT user's username and groups in Kubernetes access reviews, as the API server's
   * `--oidc-username-prefix` / `--oidc-groups-prefix` do for the same IdP (so RBAC bindings match).
   */
  jwtUsernamePrefix: T.String(),
  jwtGroupsPrefix: T.String(),
  /** Claims tried in order for the user ID. */
  userClaims: T.Array(T.String({ minLength: 1 }), { minItems: 1 }),
  /** Addresses whose `X-Forwarded-User` headers are honoured (DESIGN §5). */
  trustedProxies: T.Array(T.String()),
  /** Per-session event log: keep at most this many events (issue 3). */
  eventsRetention: T.Integer({ minimum: 0 }),
  /** Per-session event log: keep at most this many bytes of stored events; replay reads at most this much (0 = store none). */
  eventsRetentionBytes: T.Integer({ minimum: 0 }),
  /** Live view: re-check every open watcher's token and session role this often, ms (also at once on membership changes). */
  watchRecheckMs: T.Integer({ minimum: 100 }),
  /** Live view: concurrent watchers (SSE events streams and WebSockets together) across the gateway; more → SSE 429 `too_many_watchers`, WebSocket close 1013. */
  maxWatchers: T.Integer({ minimum: 1 }),
  /** Live view: concurrent watchers of one user, refused as for `maxWatchers`. */
  maxWatchersPerUser: T.Integer({ minimum: 1 }),
  /** Kubernetes backend (issue 4). */
  credentialsNamespace: T.String({ minLength: 1 }),
  tokenAudiences: T.Array(T.String()),
  /** Timeout of one Kubernetes API call, ms. */
  kubeTimeoutMs: T.Integer({ minimum: 100 }),
  /** Reuse of session reads and SubjectAccessReviews, ms; at most 30 s (issue 4 §5). */
  kubeCacheTtlMs: T.Integer({ minimum: 0, maximum: 30000 }),
});

/** The validated configuration. Durations in ms, sizes in bytes. */
export type Config = Static<typeof ConfigSchema>;

/** Default values (issue 2 §2). */
export function defaultConfig(): Config {
  return {
    host: "127.0.0.1",
    port: 8080,
    dataDir: "./.turnkey",
    backend: "embedded",
    runnerCommand: defaultRunnerCommand(),
    runnerProtocol: "stdio",
    runnerEnvPassthrough: [],
    turnTimeoutMs: 30 * 60 * 1000,
    maxConcurrentTurns: 32,
    teardownGraceMs: 5000,
    heartbeatMs: 15000,
    clientStallMs: 30000,
    maxBodyBytes: 1024 * 1024,
    providers: [...PROVIDERS],
    githubHosts: ["github.com"],
    gitlabHosts: ["gitlab.com"],
    audit: "file",
    logLevel: "info",
    jwtIssuer: "turnkey-dev",
    jwtAudience: "turnkey",
    oidcDiscovery: "off",
    jwtUsernamePrefix: "",
    jwtGroupsPrefix: "",
    userClaims: ["preferred_username", "email", "sub"],
    trustedProxies: [],
    eventsRetention: 10000,
    eventsRetentionBytes: 4 * 1024 * 1024,
    watchRecheckMs: 10000,
    maxWatchers: 64,
    maxWatchersPerUser: 8,
    credentialsNamespace: "ambient-code",
    tokenAudiences: [],
    kubeTimeoutMs: 5000,
    kubeCacheTtlMs: 30000,
  };
}

type Kind = "string" | "int" | "list" | "json-argv" | "providers";
/** Environment variable → config key and how to parse it. */
export const ENV_SETTINGS: Record<string, [keyof Config, Kind]> = {
  TURNKEY_HOST: ["host", "string"],
  TURNKEY_PORT: ["port", "int"],
  TURNKEY_DATA_DIR: ["dataDir", "string"],
  TURNKEY_PUBLIC_URL: ["publicUrl", "string"],
  TURNKEY_BACKEND: ["backend", "string"],
  TURNKEY_RUNNER_COMMAND: ["runnerCommand", "json-argv"],
  TURNKEY_RUNNER_PROTOCOL: ["runnerProtocol", "string"],
  TURNKEY_RUNNER_URL: ["runnerUrl", "string"],
  TURNKEY_RUNNER_SESSION_TOKEN_FILE: ["runnerSessionTokenFile", "string"],
  TURNKEY_RUNNER_BOT_TOKENS_FILE: ["runnerBotTokensFile", "string"],
  TURNKEY_METRICS_TOKEN_FILE: ["metricsTokenFile", "string"],
  TURNKEY_RUNNER_ENV_PASSTHROUGH: ["runnerEnvPassthrough", "list"],
  TURNKEY_RUNNER_UIDS: ["runnerUids", "string"],
  TURNKEY_RUNNER_GID: ["runnerGid", "int"],
  TURNKEY_TURNS_DIR: ["turnsDir", "string"],
  TURNKEY_TURN_TIMEOUT_MS: ["turnTimeoutMs", "int"],
  TURNKEY_MAX_CONCURRENT_TURNS: ["maxConcurrentTurns", "int"],
  TURNKEY_TEARDOWN_GRACE_MS: ["teardownGraceMs", "int"],
  TURNKEY_HEARTBEAT_MS: ["heartbeatMs", "int"],
  TURNKEY_CLIENT_STALL_MS: ["clientStallMs", "int"],
  TURNKEY_MAX_BODY_BYTES: ["maxBodyBytes", "int"],
  TURNKEY_PROVIDERS: ["providers", "providers"],
  TURNKEY_GITHUB_HOSTS: ["githubHosts", "list"],
  TURNKEY_GITLAB_HOSTS: ["gitlabHosts", "list"],
  TURNKEY_MASTER_KEY: ["masterKey", "string"],
  TURNKEY_AUDIT: ["audit", "string"],
  TURNKEY_LOG_LEVEL: ["logLevel", "string"],
  TURNKEY_JWT_ISSUER: ["jwtIssuer", "string"],
  TURNKEY_JWT_AUDIENCE: ["jwtAudience", "string"],
  TURNKEY_JWKS_URL: ["jwksUrl", "string"],
  TURNKEY_OIDC_DISCOVERY: ["oidcDiscovery", "string"],
  TURNKEY_JWT_USERNAME_PREFIX: ["jwtUsernamePrefix", "string"],
  TURNKEY_JWT_GROUPS_PREFIX: ["jwtGroupsPrefix", "string"],
  TURNKEY_USER_CLAIMS: ["userClaims", "list"],
  TURNKEY_TRUSTED_PROXIES: ["trustedProxies", "list"],
  TURNKEY_EVENTS_RETENTION: ["eventsRetention", "int"],
  TURNKEY_EVENTS_RETENTION_BYTES: ["eventsRetentionBytes", "int"],
  TURNKEY_WATCH_RECHECK_MS: ["watchRecheckMs", "int"],
  TURNKEY_MAX_WATCHERS: ["maxWatchers", "int"],
  TURNKEY_MAX_WATCHERS_PER_USER: ["maxWatchersPerUser", "int"],
  TURNKEY_CREDENTIALS_NAMESPACE: ["credentialsNamespace", "string"],
  TURNKEY_TOKEN_AUDIENCES: ["tokenAudiences", "list"],
  TURNKEY_KUBE_TIMEOUT_MS: ["kubeTimeoutMs", "int"],
  TURNKEY_KUBE_CACHE_TTL_MS: ["kubeCacheTtlMs", "int"],
};

/**
 * Settings that hold a secret: redacted in the logged configuration, and never accepted as flags
 * (`/proc/<pid>/cmdline` is readable by every local user, runners under per-turn uids included;
 * found by a break-it review).
 */
export const SECRET_KEYS: ReadonlySet<keyof Config> = new Set(["masterKey"]);

function parseValue(setting: string, kind: Kind, raw: string): unknown {
  switch (kind) {
    case "string":
      return raw;
    case "int": {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError(setting, `expected a whole number, got ${JSON.stringify(raw)}`);
      return Number(raw.trim());
    }
    case "list":
      return raw.split(",").map((s) => s.trim()).filter(Boolean);
    case "providers": {
      const list = raw.split(",").map((s) => s.trim()).filter(Boolean);
      for (const p of list) if (!isProvider(p)) throw new ConfigError(setting, `unknown provider ${JSON.stringify(p)} (known: ${PROVIDERS.join(", ")})`);
      return list;
    }
    case "json-argv": {
      let argv: unknown;
      try {
        argv = JSON.parse(raw);
      } catch {
        throw new ConfigError(setting, "expected a JSON array of strings, e.g. [\"python\",\"runner.py\"]");
      }
      if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === "string" && a.length > 0))
        throw new ConfigError(setting, "expected a non-empty JSON array of non-empty strings");
      return argv;
    }
  }
}

/** Flag name (kebab-case, as on the command line) for a config key. */
export function flagName(key: keyof Config): string {
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/**
 * Build and validate the configuration.
 * @param env usually `process.env`; only `TURNKEY_*` names are read.
 * @param flags raw flag values keyed by config key (strings as typed on the command line).
 * @throws ConfigError naming the first bad setting (flag or variable).
 */
export function loadConfig(env: Record<string, string | undefined>, flags: Partial<Record<keyof Config, string>> = {}): Config {
  const cfg: Record<string, unknown> = { ...defaultConfig() };
  const sources: Record<string, string> = {};
  for (const [name, [key, kind]] of Object.entries(ENV_SETTINGS)) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    cfg[key] = parseValue(name, kind, raw);
    sources[key] = name;
  }
  for (const [key, raw] of Object.entries(flags)) {
    if (raw === undefined) continue;
    if (SECRET_KEYS.has(key as keyof Config))
      throw new ConfigError(`--${flagName(key as keyof Config)}`, "secrets are not accepted as flags (the command line is visible to every local process); use the environment variable or the key file");
    const entry = Object.values(ENV_SETTINGS).find(([k]) => k === key);
    if (!entry) continue;
    const flag = `--${flagName(key as keyof Config)}`;
    cfg[key] = parseValue(flag, entry[1], raw);
    sources[key] = flag;
  }
  const firstError = Value.Errors(ConfigSchema, cfg).First();
  if (firstError) {
    const key = firstError.path.split("/")[1] ?? "";
    const setting = sources[key] ?? (key ? `${key} (default)` : "configuration");
    // A union of literals (TURNKEY_AUDIT, TURNKEY_BACKEND, …): name the values it takes.
    const choices = (firstError.schema as { anyOf?: { const?: unknown }[] }).anyOf?.map((s) => s.const).filter((c) => c !== undefined);
    throw new ConfigError(setting, choices?.length ? `expected one of: ${choices.join(", ")}` : firstError.message);
  }
  const out = cfg as Config;
  out.dataDir = resolve(out.dataDir);
  if (out.masterKey !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(out.masterKey))
    throw new ConfigError(sources.masterKey ?? "TURNKEY_MASTER_KEY", "expected 32 bytes as base64url (43 characters, no padding)");
  checkOidcDiscovery(out, sources);
  checkRunnerIsolation(out, sources);
  return out;
}

/**
 * `oidcDiscovery` needs a pinned, explicitly set `jwtIssuer` and excludes `jwksUrl`;
 * `serviceaccount` needs the kubernetes backend; `issuer` needs an `https:` issuer URL (or a
 * loopback `http:` one: a local IdP) because the keys are found through it (OIDC Discovery §4).
 * @throws ConfigError naming the setting.
 */
function checkOidcDiscovery(out: Config, sources: Record<string, string>): void {
  if (out.oidcDiscovery === "off") return;
  const setting = sources.oidcDiscovery ?? "TURNKEY_OIDC_DISCOVERY";
  const mode = out.oidcDiscovery;
  if (out.jwksUrl) throw new ConfigError(setting, `set either TURNKEY_JWKS_URL or ${mode} discovery, not both`);
  if (mode === "serviceaccount") {
    if (out.backend !== "kubernetes") throw new ConfigError(setting, "serviceaccount discovery needs TURNKEY_BACKEND=kubernetes");
    if (!sources.jwtIssuer) throw new ConfigError(setting, "serviceaccount discovery needs TURNKEY_JWT_ISSUER set to the cluster's service-account issuer (pinned)");
    return;
  }
  if (!sources.jwtIssuer) throw new ConfigError(setting, "issuer discovery needs TURNKEY_JWT_ISSUER set to your identity provider's issuer URL");
  let url: URL | undefined;
  try {
    url = new URL(out.jwtIssuer);
  } catch {
    url = undefined;
  }
  if (!url || !(url.protocol === "https:" || isLoopbackHttp(url)) || url.search || url.hash)
    throw new ConfigError(sources.jwtIssuer ?? "TURNKEY_JWT_ISSUER", "issuer discovery needs an https:// issuer URL without query or fragment (http:// only on loopback)");
}

/** A parsed `runnerUids` setting: uids `first..last`, both inclusive. */
export interface RunnerUidRange {
  first: number;
  last: number;
}

/**
 * Parse `runnerUids` (`"200000-200999"` or `"200000"`). Pure: no check against the gateway's
 * own ids (`loadConfig` does that).
 * @returns undefined when unset.
 * @throws ConfigError (`setting`) for a malformed or reversed range, uid 0, or a uid above 2^32-2.
 */
export function parseRunnerUids(raw: string | undefined, setting = "TURNKEY_RUNNER_UIDS"): RunnerUidRange | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+)(?:-(\d+))?$/.exec(raw.trim());
  if (!m) throw new ConfigError(setting, `expected a uid or a range like 200000-200999, got ${JSON.stringify(raw)}`);
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first < 1) throw new ConfigError(setting, "uid 0 (root) cannot be a runner uid");
  if (last > MAX_ID) throw new ConfigError(setting, `uids above ${MAX_ID} are not valid`);
  if (last < first) throw new ConfigError(setting, `range ${raw} ends before it starts`);
  return { first, last };
}

/**
 * Runner isolation settings (DESIGN §7 rule 1): the uid range must not hold the gateway's own
 * uid or gid (a runner would then be the gateway, or share its group), nor may
 * `runnerGid`; with uids the turns root must lie outside the data dir, which stays 0700.
 * Fills in the default `turnsDir`. @throws ConfigError naming the setting.
 */
function checkRunnerIsolation(out: Config, sources: Record<string, string>): void {
  const uidsSetting = sources.runnerUids ?? "TURNKEY_RUNNER_UIDS";
  const range = parseRunnerUids(out.runnerUids, uidsSetting);
  const own = { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 };
  const inRange = (id: number) => range !== undefined && id >= range.first && id <= range.last;
  if (inRange(own.uid)) throw new ConfigError(uidsSetting, `the range contains the gateway's own uid ${own.uid}`);
  if (out.runnerGid !== undefined) {
    if (out.runnerGid === own.gid) throw new ConfigError(sources.runnerGid ?? "TURNKEY_RUNNER_GID", `runners must not share the gateway's gid ${own.gid}`);
  } else if (inRange(own.gid)) {
    throw new ConfigError(uidsSetting, `the range contains the gateway's gid ${own.gid} (each runner's gid is its uid); set TURNKEY_RUNNER_GID`);
  }
  const defaultTurns = range ? join(tmpdir(), `turnkey-turns-${own.uid}`) : join(out.dataDir, "turns");
  out.turnsDir = resolve(out.turnsDir ?? defaultTurns);
  const rel = relative(out.dataDir, out.turnsDir);
  if (range && (rel === "" || (rel !== ".." && !rel.startsWith("../") && !isAbsolute(rel))))
    throw new ConfigError(sources.turnsDir ?? "TURNKEY_TURNS_DIR", "with TURNKEY_RUNNER_UIDS the turns dir must be outside the data dir (runners cannot traverse it)");
}

/** The public base URL runners use to call back (`TURNKEY_CREDENTIALS_URL` is built from it). */
export function publicBaseUrl(cfg: Config, boundPort?: number): string {
  if (cfg.publicUrl) return cfg.publicUrl.replace(/\/+$/, "");
  const host = cfg.host === "0.0.0.0" || cfg.host === "::" ? "127.0.0.1" : cfg.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${boundPort ?? cfg.port}`;
}

/** The configuration with secret values replaced by `[REDACTED]`, for the start-up log line. */
export function redactConfig(cfg: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) out[k] = SECRET_KEYS.has(k as keyof Config) && v !== undefined ? "[REDACTED]" : v;
  return out;
}

/** Path helpers for files in the data directory. */
export const dataPath = (cfg: Pick<Config, "dataDir">, ...parts: string[]) => join(cfg.dataDir, ...parts);

/** Re-exported for configuration consumers. */
export type { ProviderName };
