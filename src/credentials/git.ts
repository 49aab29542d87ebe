/**
 * The per-turn git configuration (DESIGN §3, row "all"): `[user]` identity plus a credential
 * helper per configured GitHub/GitLab host. The runner gets it through `GIT_CONFIG_GLOBAL`, so
 * the machine's `~/.gitconfig` is neither read nor written, and `GIT_CONFIG_NOSYSTEM=1` keeps
 * `/etc/gitconfig` (and any system credential helper) out.
 *
 * The token is not in the config text: the helper reads the token file in the turn directory
 * each time git asks, so the config can be shown or logged without leaking, and a helper left
 * behind after teardown answers nothing (the file is gone).
 */
import { ConfigError } from "../errors.ts";

/** Usernames git sends with the token: GitHub accepts `x-access-token` for installation and
 * personal tokens; GitLab's documented username for OAuth/PAT over HTTPS is `oauth2`. */
export const GIT_USERNAMES = { github: "x-access-token", gitlab: "oauth2" } as const;

/** A host the helper answers for, and the token file (absolute path) it reads. */
export interface GitCredentialHost {
  /** Normalised URL prefix, e.g. `https://github.com` or `http://127.0.0.1:34567`. */
  url: string;
  username: string;
  tokenFile: string;
}

/** Input of `buildGitConfig`. */
export interface GitConfigInput {
  userName: string;
  userEmail: string;
  /** Hosts to answer for; only pass hosts whose provider the sender has a credential for. */
  hosts: readonly GitCredentialHost[];
}

const BARE_HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/;

/**
 * Turn a configured host entry into the URL prefix git matches credentials against:
 * a bare host (`github.com`, `gitlab.example.org:8443`) becomes `https://<host>`; an entry with a
 * scheme (`http://127.0.0.1:34567`) is kept, minus trailing slashes.
 * @param setting the config key, for the error (`githubHosts` / `gitlabHosts`).
 * @throws ConfigError when the entry is neither (call this at start, so a bad setting fails early).
 */
export function normalizeGitHost(entry: string, setting = "githubHosts"): string {
  const e = entry.trim();
  if (BARE_HOST.test(e)) return `https://${e.toLowerCase()}`;
  let u: URL;
  try {
    u = new URL(e);
  } catch {
    throw new ConfigError(setting, `${JSON.stringify(entry)} is neither a host name nor an http(s) URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:")
    throw new ConfigError(setting, `${JSON.stringify(entry)}: only http and https URLs are supported`);
  if (u.username || u.password || u.search || u.hash)
    throw new ConfigError(setting, `${JSON.stringify(entry)}: no credentials, query or fragment allowed`);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}`;
}

/** Quote a string for POSIX `sh` (single quotes; `'` becomes `'\''`). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote a value for a gitconfig file: always double-quoted, so `;`, `#` and spaces are literal. */
function configValue(s: string): string {
  if (/[\n\r\0]/.test(s)) throw new TypeError("gitconfig values cannot contain newlines or NUL");
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** Identity fields are free text from the user directory: flatten control characters. */
function identityValue(s: string): string {
  return configValue(s.replace(/[\x00-\x1f\x7f]+/g, " ").trim());
}

/**
 * The shell snippet git runs as `credential.<url>.helper`. It answers only `get`, and only when
 * the token file is still readable; `store`/`erase` are ignored (nothing is ever persisted).
 * git passes the request on stdin; it is drained so git never sees EPIPE.
 */
export function helperSnippet(username: string, tokenFile: string): string {
  const f = shellQuote(tokenFile);
  return (
    `!f() { cat >/dev/null; test "$1" = get || exit 0; test -r ${f} || exit 0; ` +
    `printf 'username=%s\\npassword=%s\\n' ${shellQuote(username)} "$(cat ${f})"; }; f`
  );
}

/**
 * The gitconfig text for one turn.
 *
 * - `[credential] helper =` (empty) first resets the helper list, so no helper configured
 *   earlier can answer; `useHttpPath = false` makes git match on scheme+host(+port) only.
 * - then one `[credential "<url>"]` section per host with the helper from `helperSnippet`.
 *   git matches the URL prefix including the port, so `http://127.0.0.1:1` does not answer
 *   for `http://127.0.0.1:2`; any other host gets no answer, and with `GIT_TERMINAL_PROMPT=0`
 *   git fails instead of prompting.
 * @throws TypeError if a path or URL contains a newline or NUL (cannot be written safely).
 */
export function buildGitConfig(input: GitConfigInput): string {
  const lines = [
    "# Per-turn git configuration written by Turnkey; removed when the turn ends.",
    "[user]",
    `\tname = ${identityValue(input.userName)}`,
    `\temail = ${identityValue(input.userEmail)}`,
    "[credential]",
    "\thelper =",
    "\tuseHttpPath = false",
  ];
  for (const h of input.hosts) {
    if (/[\n\r\0]/.test(h.url)) throw new TypeError("credential URL cannot contain newlines or NUL");
    const section = h.url.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
    lines.push(`[credential "${section}"]`, `\thelper = ${configValue(helperSnippet(h.username, h.tokenFile))}`);
  }
  return lines.join("\n") + "\n";
}
