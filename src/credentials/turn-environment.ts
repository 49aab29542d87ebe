/**
 * The environment and files a local runner gets for one turn (DESIGN §3). Pure: it computes,
 * the supervisor writes. Built from an allowlist plus the sender's credentials, never from the
 * gateway's own environment (DESIGN §7 rule 3: `TURNKEY_MASTER_KEY` and friends stay out).
 *
 * HOME decision: `HOME` is the turn directory, not the gateway's home. Tools read credentials
 * from HOME on their own (`~/.netrc` for git and curl, `~/.config/gh/hosts.yml` for gh,
 * `~/.docker/config.json`, `~/.npmrc`), and those belong to whoever runs the gateway, not to
 * the sender (DESIGN §7 rule 1). An operator who really wants the real HOME lists `HOME` in
 * `runnerEnvPassthrough`; git still uses only the turn's config (`GIT_CONFIG_GLOBAL` replaces
 * `~/.gitconfig` and `~/.config/git/config`).
 */
import { join } from "node:path";
import type { TurnContext } from "../runner/types.ts";
import { buildGitConfig, GIT_USERNAMES, normalizeGitHost, type GitCredentialHost } from "./git.ts";

/** A file to create in the turn directory. `name` is a bare file name; `mode` e.g. 0o600. */
export interface TurnFile {
  name: string;
  content: string;
  mode: number;
}

/** Result of `buildTurnEnvironment`. */
export interface TurnEnvironment {
  /** The runner's complete environment (nothing else is inherited). */
  env: Record<string, string>;
  files: TurnFile[];
  /** Every secret value of this turn (tokens, keys, passwords, the turn token), for the scrubber. */
  secrets: string[];
}

/** Options of `buildTurnEnvironment`. */
export interface TurnEnvironmentOptions {
  /** Absolute path of the turn directory the files will be written to. */
  turnDir: string;
  /** Extra variable names copied from `baseEnv` (config `runnerEnvPassthrough`). */
  passthrough: readonly string[];
  /** Usually the gateway's `process.env`; only allowlisted names are read. */
  baseEnv: Record<string, string | undefined>;
  /** Configured hosts (bare host or URL with scheme), config `githubHosts`/`gitlabHosts`. */
  githubHosts: readonly string[];
  gitlabHosts: readonly string[];
}

/** Names always copied from the base environment when set (HOME is handled apart, see above). */
export const BASE_ALLOWLIST: readonly string[] = ["PATH", "LANG", "TZ"];

/** File names in the turn directory (DESIGN §3). */
export const TURN_FILES = {
  github: "github_token",
  gitlab: "gitlab_token",
  google: "google_credentials.json",
  gitconfig: "gitconfig",
} as const;

/**
 * Every name this module may set. A passthrough entry with one of these names (or a `TURNKEY_`
 * prefix) is ignored: otherwise a gateway-wide `GITHUB_TOKEN` would reach a sender who has no
 * GitHub credential of their own (DESIGN §7 rule 1).
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "JIRA_URL", "JIRA_EMAIL", "JIRA_API_TOKEN",
  "USER_GOOGLE_EMAIL", "GOOGLE_APPLICATION_CREDENTIALS", "CODERABBIT_API_KEY",
  "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "GIT_TERMINAL_PROMPT", "GIT_USER_NAME", "GIT_USER_EMAIL",
  "PROJECT_NAME", "SESSION_ID", "THREAD_ID", "RUN_ID", "CURRENT_USER_ID", "CURRENT_USER_NAME",
]);

/** Google's OAuth token endpoint, for `google_credentials.json` (authorized-user format). */
export const GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token";

const FILE_MODE = 0o600;

/** Passthrough names a runner may not receive (see `RESERVED_NAMES`). */
export function isReservedName(name: string): boolean {
  return RESERVED_NAMES.has(name) || name.startsWith("TURNKEY_");
}

/**
 * Build the runner environment, the turn files and the secret list for one turn.
 *
 * Per provider (absent credential → its variables and files are simply absent):
 * github `GITHUB_TOKEN`, `GH_TOKEN`, file `github_token`; gitlab `GITLAB_TOKEN`, `gitlab_token`;
 * jira `JIRA_URL`, `JIRA_EMAIL`, `JIRA_API_TOKEN`; google `USER_GOOGLE_EMAIL`,
 * `GOOGLE_APPLICATION_CREDENTIALS` → `google_credentials.json`; coderabbit `CODERABBIT_API_KEY`.
 * Always: `GIT_CONFIG_GLOBAL` → `gitconfig`, `GIT_CONFIG_NOSYSTEM=1`, `GIT_TERMINAL_PROMPT=0`,
 * identity, turn token, callback URL and the turn's names.
 *
 * Git identity: name = the sender's display name (else user ID); email = the forge email
 * (GitHub, then GitLab), else the directory email, else `<userId>@users.turnkey.invalid`
 * (RFC 2606 `.invalid`, so a commit never claims somebody's real address).
 *
 * `secrets` also lists Gerrit HTTP passwords, which are not injected: the runner can still
 * fetch them from the credential endpoint, and they must not reach the stream either.
 * @throws ConfigError on a malformed host entry; TypeError if `turnDir` contains a newline.
 */
export function buildTurnEnvironment(ctx: TurnContext, opts: TurnEnvironmentOptions): TurnEnvironment {
  const env: Record<string, string> = {};
  const files: TurnFile[] = [];
  const secrets: string[] = [];
  const put = (name: string, value: string | undefined) => {
    if (value !== undefined && value !== "") env[name] = value;
  };
  const secret = (value: string | undefined) => {
    if (value) secrets.push(value);
  };
  const path = (name: string) => join(opts.turnDir, name);

  for (const name of BASE_ALLOWLIST) put(name, opts.baseEnv[name]);
  for (const name of opts.passthrough) if (!isReservedName(name)) put(name, opts.baseEnv[name]);
  if (!opts.passthrough.includes("HOME") || env.HOME === undefined) env.HOME = opts.turnDir;

  const c = ctx.credentials;
  const hosts: GitCredentialHost[] = [];
  if (c.github?.token) {
    put("GITHUB_TOKEN", c.github.token);
    put("GH_TOKEN", c.github.token);
    files.push({ name: TURN_FILES.github, content: c.github.token, mode: FILE_MODE });
    secret(c.github.token);
    for (const h of opts.githubHosts)
      hosts.push({ url: normalizeGitHost(h, "githubHosts"), username: GIT_USERNAMES.github, tokenFile: path(TURN_FILES.github) });
  }
  if (c.gitlab?.token) {
    put("GITLAB_TOKEN", c.gitlab.token);
    files.push({ name: TURN_FILES.gitlab, content: c.gitlab.token, mode: FILE_MODE });
    secret(c.gitlab.token);
    for (const h of opts.gitlabHosts)
      hosts.push({ url: normalizeGitHost(h, "gitlabHosts"), username: GIT_USERNAMES.gitlab, tokenFile: path(TURN_FILES.gitlab) });
  }
  if (c.jira) {
    put("JIRA_URL", c.jira.url);
    put("JIRA_EMAIL", c.jira.email);
    put("JIRA_API_TOKEN", c.jira.apiToken);
    secret(c.jira.apiToken);
  }
  if (c.google?.accessToken) {
    const g = c.google;
    put("USER_GOOGLE_EMAIL", g.email);
    put("GOOGLE_APPLICATION_CREDENTIALS", path(TURN_FILES.google));
    const doc = {
      token: g.accessToken,
      refresh_token: g.refreshToken ?? null,
      token_uri: GOOGLE_TOKEN_URI,
      client_id: g.clientId ?? null,
      client_secret: g.clientSecret ?? null,
      scopes: g.scopes ?? [],
      expiry: g.expiresAt,
    };
    files.push({ name: TURN_FILES.google, content: JSON.stringify(doc, null, 2) + "\n", mode: FILE_MODE });
    secret(g.accessToken);
    secret(g.refreshToken);
    secret(g.clientSecret);
  }
  if (c.coderabbit?.apiKey) {
    put("CODERABBIT_API_KEY", c.coderabbit.apiKey);
    secret(c.coderabbit.apiKey);
  }
  for (const inst of c.gerrit?.instances ?? []) secret(inst.httpPassword);

  const gitName = ctx.userName || ctx.userId;
  const gitEmail = c.github?.email || c.gitlab?.email || ctx.userEmail || `${ctx.userId}@users.turnkey.invalid`;
  files.push({
    name: TURN_FILES.gitconfig,
    content: buildGitConfig({ userName: gitName, userEmail: gitEmail, hosts }),
    mode: FILE_MODE,
  });
  Object.assign(env, {
    GIT_CONFIG_GLOBAL: path(TURN_FILES.gitconfig),
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
  });
  put("GIT_USER_NAME", gitName);
  put("GIT_USER_EMAIL", gitEmail);
  put("TURNKEY_TURN_TOKEN", ctx.turnToken);
  put("TURNKEY_CREDENTIALS_URL", ctx.credentialsUrl);
  put("PROJECT_NAME", ctx.project);
  put("SESSION_ID", ctx.session);
  put("THREAD_ID", ctx.threadId);
  put("RUN_ID", ctx.runId);
  put("CURRENT_USER_ID", ctx.userId);
  put("CURRENT_USER_NAME", ctx.userName);
  secret(ctx.turnToken);

  return { env, files, secrets: [...new Set(secrets)] };
}

/**
 * The secret values of credential records, as `buildTurnEnvironment` collects them for a turn's
 * scrubber (tokens, API keys, passwords; not URLs, names or emails). Pure, no files.
 * @example credentialSecrets({ github: { token: "ghp_x…" } }) // → ["ghp_x…"]
 */
export function credentialSecrets(credentials: TurnContext["credentials"]): string[] {
  const ctx = { credentials, turnToken: "", project: "p", session: "s", threadId: "t", runId: "r", userId: "u", userName: "u", credentialsUrl: "", input: {}, deadline: 0 } as unknown as TurnContext;
  return buildTurnEnvironment(ctx, { turnDir: "/nonexistent", passthrough: [], baseEnv: {}, githubHosts: [], gitlabHosts: [] }).secrets;
}
