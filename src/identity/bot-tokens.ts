/**
 * Runner bot tokens of the embedded backend (`TURNKEY_RUNNER_BOT_TOKENS_FILE`): static bearer
 * tokens for runners that are not handed a turn token (the upstream platform's "bot token").
 * A match yields a `service` principal, which DESIGN §2.3 lets read credentials only for a user
 * with an active run in the session: a bot token alone never unlocks anyone's credentials.
 *
 * File format (UTF-8, one entry per line):
 * ```
 * # comment lines and blank lines are ignored
 * runner-a@demo/pairing:3q2+7w...   bound to session "pairing" of project "demo" (recommended)
 * runner-b@demo:9xk1...             bound to project "demo", any of its sessions
 * runner-c:Zm9vYmFy...              unbound: any session (logged as a warning at start)
 * Zm9vYmFyYmF6cXV4...               a bare token, unbound, named "bot-<line number>"
 * ```
 * Names, projects and sessions are DNS-1123 labels. A bound token is refused outside its scope
 * (403 `service_wrong_session`), as a Kubernetes runner ServiceAccount is outside its session:
 * that is what keeps one session's runner from reading another session's sender's credentials.
 * Tokens are RFC 6750 `b64token`s of at least 16 characters; `:` is not a b64token character,
 * so the first `:` always ends the name. Keep the file mode 0600 (not enforced: Kubernetes
 * Secret mounts are 0644 by default).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import { isDns1123Label } from "../names.ts";
import type { Authenticator, Principal } from "./principal.ts";
import { B64TOKEN, bearerToken } from "./bearer.ts";

/** Shortest accepted bot token, characters. */
export const MIN_BOT_TOKEN_LENGTH = 16;

/** The setting named in errors. */
const SETTING = "TURNKEY_RUNNER_BOT_TOKENS_FILE";

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** One configured bot token: its name, optional scope, and the token itself. */
export interface BotTokenEntry {
  name: string;
  token: string;
  /** Bound to this project (and, with `session`, to that session only); unset = unbound. */
  project?: string;
  session?: string;
}

/**
 * Runner bot tokens (`TURNKEY_RUNNER_BOT_TOKENS_FILE`, embedded backend) → `service` principals
 * carrying the token's scope; only SHA-256 digests are kept, compared in constant time. See the
 * module doc for the file format.
 */
export class BotTokenAuthenticator implements Authenticator {
  /** Only SHA-256 digests are kept: a heap dump does not reveal the tokens. */
  #entries: { principal: Extract<Principal, { kind: "service" }>; digest: Buffer }[];

  /**
   * @throws ConfigError for an empty or duplicate name, a scope that is not DNS-1123 labels, a
   *   session without a project, or a token that is too short.
   */
  constructor(entries: readonly BotTokenEntry[]) {
    const names = new Set<string>();
    this.#entries = entries.map(({ name, token, project, session }) => {
      if (!isDns1123Label(name)) throw new ConfigError(SETTING, `bot name ${JSON.stringify(name)} is not a DNS-1123 label`);
      if (names.has(name)) throw new ConfigError(SETTING, `duplicate bot name ${JSON.stringify(name)}`);
      if ((project !== undefined && !isDns1123Label(project)) || (session !== undefined && (project === undefined || !isDns1123Label(session))))
        throw new ConfigError(SETTING, `scope of ${name} must be @project or @project/session (DNS-1123 labels)`);
      if (token.length < MIN_BOT_TOKEN_LENGTH || !B64TOKEN.test(token))
        throw new ConfigError(SETTING, `token of ${name} must be a b64token of at least ${MIN_BOT_TOKEN_LENGTH} characters`);
      names.add(name);
      const principal = { kind: "service" as const, name, ...(project !== undefined ? { project } : {}), ...(session !== undefined ? { session } : {}) };
      return { principal, digest: sha256(token) };
    });
  }

  /**
   * Parse the file format above. Error messages name the line, never the token.
   * @throws ConfigError on a malformed line.
   */
  static parse(text: string): BotTokenAuthenticator {
    const entries: BotTokenEntry[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const colon = line.indexOf(":");
      const head = colon >= 0 ? line.slice(0, colon).trim() : `bot-${i + 1}`;
      const token = colon >= 0 ? line.slice(colon + 1).trim() : line;
      if (!token) throw new ConfigError(SETTING, `line ${i + 1}: empty token`);
      const at = head.indexOf("@");
      const name = at >= 0 ? head.slice(0, at) : head;
      const scope = at >= 0 ? head.slice(at + 1).split("/") : [];
      if (at >= 0 && (scope.length > 2 || scope.some((part) => part === "")))
        throw new ConfigError(SETTING, `line ${i + 1}: scope must be @project or @project/session`);
      entries.push({ name, token, ...(scope[0] !== undefined ? { project: scope[0] } : {}), ...(scope[1] !== undefined ? { session: scope[1] } : {}) });
    });
    return new BotTokenAuthenticator(entries);
  }

  /**
   * Read and parse the file at `path`.
   * @throws ConfigError when it cannot be read or is malformed.
   */
  static fromFile(path: string): BotTokenAuthenticator {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new ConfigError(SETTING, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
    return BotTokenAuthenticator.parse(text);
  }

  /** Number of configured tokens. */
  get size(): number {
    return this.#entries.length;
  }

  /** Names of the tokens bound to no project: they may act in any session (a start-up warning). */
  get unbound(): string[] {
    return this.#entries.filter((e) => e.principal.project === undefined).map((e) => e.principal.name);
  }

  /**
   * The name of the bot whose token this is, or `null`. Constant time in the token's content:
   * both sides are SHA-256 digests compared with `timingSafeEqual`, and every entry is compared.
   */
  match(token: string): string | null {
    return this.principalFor(token)?.name ?? null;
  }

  /** The `service` principal (name and scope) for a matching bearer token, else `null` (not ours; try the next). */
  principalFor(token: string): Extract<Principal, { kind: "service" }> | null {
    const digest = sha256(token);
    let found: Extract<Principal, { kind: "service" }> | null = null;
    for (const e of this.#entries) if (timingSafeEqual(digest, e.digest) && found === null) found = e.principal;
    return found === null ? null : { ...found };
  }

  /**
   * Authenticate from `Authorization: Bearer <bot token>`.
   * @returns `null` without an Authorization header or for a token that is not a bot token.
   * @throws TurnkeyError 401 `invalid_token` for a malformed Authorization header.
   */
  async authenticate(req: { headers: Headers }): Promise<Principal | null> {
    const token = bearerToken(req.headers);
    return token === null ? null : this.principalFor(token);
  }
}
