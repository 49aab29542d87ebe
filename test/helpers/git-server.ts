/**
 * A loopback smart-HTTP git server for tests: Bun.serve on 127.0.0.1:<random port> in front of
 * `git http-backend` (CGI), serving one bare repository `repo.git` with one commit on `main`.
 * Every request must carry HTTP Basic auth whose password equals `token` (any username is
 * accepted, so both `x-access-token` and `oauth2` work); otherwise 401 with `WWW-Authenticate`,
 * which is what makes git ask its credential helper.
 *
 * @example
 * const srv = await startGitServer({ token: "ghp_test123456" });
 * // git ls-remote `${srv.url}/repo.git`
 * await srv.stop();
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Default location of git's CGI backend on Debian/Ubuntu. */
export const GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend";

/** A running test git server. */
export interface GitServer {
  /** Base URL without trailing slash, e.g. `http://127.0.0.1:34567`. */
  url: string;
  /** URL of the served repository (`<url>/repo.git`). */
  repoUrl: string;
  /** Commit ID `main` points at. */
  head: string;
  /** Requests seen, with the username they authenticated as (null = no/failed auth). */
  requests: { path: string; user: string | null }[];
  stop(): Promise<void>;
}

/** Options of `startGitServer`. */
export interface GitServerOptions {
  /** The only password accepted. */
  token: string;
  /** Path of `git-http-backend`; default `GIT_HTTP_BACKEND`. */
  backend?: string;
}

/** A clean environment for the git commands that build the fixture repository. */
function gitEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_AUTHOR_NAME: "Fixture",
    GIT_AUTHOR_EMAIL: "fixture@example.invalid",
    GIT_COMMITTER_NAME: "Fixture",
    GIT_COMMITTER_EMAIL: "fixture@example.invalid",
  };
}

async function git(args: string[], cwd: string, env: Record<string, string>): Promise<string> {
  const p = Bun.spawn(["git", ...args], { cwd, env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`git ${args.join(" ")} failed (${code}): ${err}`);
  return out.trim();
}

function basicUser(header: string | null, token: string): string | null {
  const m = header?.match(/^Basic\s+(.+)$/i);
  if (!m?.[1]) return null;
  const decoded = Buffer.from(m[1], "base64").toString("utf8");
  const i = decoded.indexOf(":");
  if (i < 0) return null;
  return decoded.slice(i + 1) === token ? decoded.slice(0, i) : null;
}

/** Parse a CGI response (headers, blank line, body) into a Response. */
function cgiResponse(raw: Uint8Array): Response {
  const buf = Buffer.from(raw);
  let sep = buf.indexOf("\r\n\r\n");
  let sepLen = 4;
  if (sep < 0) {
    sep = buf.indexOf("\n\n");
    sepLen = 2;
  }
  if (sep < 0) return new Response("bad CGI response", { status: 502 });
  const headers = new Headers();
  let status = 200;
  for (const line of buf.subarray(0, sep).toString("latin1").split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 200;
    else headers.append(name, value);
  }
  return new Response(buf.subarray(sep + sepLen), { status, headers });
}

/**
 * Create the fixture repository and start the server.
 * @throws if git or the backend cannot be run.
 */
export async function startGitServer(opts: GitServerOptions): Promise<GitServer> {
  const backend = opts.backend ?? GIT_HTTP_BACKEND;
  const root = await mkdtemp(join(tmpdir(), "turnkey-git-"));
  const env = gitEnv(root);
  const work = join(root, "work");
  await git(["init", "--bare", "--initial-branch=main", join(root, "repo.git")], root, env);
  await git(["init", "--initial-branch=main", work], root, env);
  await writeFile(join(work, "README.md"), "fixture\n");
  await git(["add", "README.md"], work, env);
  await git(["commit", "-m", "fixture commit"], work, env);
  await git(["push", join(root, "repo.git"), "main"], work, env);
  const head = await git(["rev-parse", "HEAD"], work, env);

  const requests: GitServer["requests"] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const user = basicUser(req.headers.get("authorization"), opts.token);
      requests.push({ path: url.pathname, user });
      if (user === null)
        return new Response("authentication required\n", { status: 401, headers: { "WWW-Authenticate": 'Basic realm="turnkey-test"' } });
      const body = req.body ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array();
      const cgi = Bun.spawn([backend], {
        env: {
          PATH: env.PATH!,
          GIT_PROJECT_ROOT: root,
          GIT_HTTP_EXPORT_ALL: "1",
          GIT_CONFIG_NOSYSTEM: "1",
          GIT_CONFIG_GLOBAL: "/dev/null",
          PATH_INFO: decodeURIComponent(url.pathname),
          QUERY_STRING: url.search.replace(/^\?/, ""),
          REQUEST_METHOD: req.method,
          CONTENT_TYPE: req.headers.get("content-type") ?? "",
          CONTENT_LENGTH: String(body.byteLength),
          GIT_PROTOCOL: req.headers.get("git-protocol") ?? "",
          REMOTE_USER: user,
          REMOTE_ADDR: "127.0.0.1",
        },
        stdin: body,
        stdout: "pipe",
        stderr: "ignore",
      });
      const raw = new Uint8Array(await new Response(cgi.stdout).arrayBuffer());
      await cgi.exited;
      return cgiResponse(raw);
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    repoUrl: `${url}/repo.git`,
    head,
    requests,
    async stop() {
      server.stop(true);
      await rm(root, { recursive: true, force: true });
    },
  };
}
