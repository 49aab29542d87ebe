/**
 * Runner bot tokens of the embedded backend (`TURNKEY_RUNNER_BOT_TOKENS_FILE`): static bearer
 * tokens for runners that are not handed a turn token (the upstream platform's "bot token").
 * A match yields a `service` principal, which DESIGN §2.3 lets read credentials only for a user
 * with an active run in the session: a bot token alone never unlocks anyone's credentials.
 *
 * File format (UTF-8, one entry per line):
 * ```
 * # comment lines and blank lines are ignored
 * runner-a:3q2+7w...      name:token, name a DNS-1123 label (the principal's name)
 * Zm9vYmFyYmF6cXV4...     a bare token, named "bot-<line number>"
 * ```
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

/**
 * Runner bot tokens (`TURNKEY_RUNNER_BOT_TOKENS_FILE`, embedded backend) → `service` principals;
 * only SHA-256 digests are kept, compared in constant time. See the module doc for the file format.
 */
export class BotTokenAuthenticator implements Authenticator {
  /** Only SHA-256 digests are kept: a heap dump does not reveal the tokens. */
  #entries: { name: string; digest: Buffer }[];

  /** @throws ConfigError for an empty or duplicate name, or a token that is too short. */
  constructor(entries: readonly { name: string; token: string }[]) {
    const names = new Set<string>();
    this.#entries = entries.map(({ name, token }) => {
      if (!isDns1123Label(name)) throw new ConfigError(SETTING, `bot name ${JSON.stringify(name)} is not a DNS-1123 label`);
      if (names.has(name)) throw new ConfigError(SETTING, `duplicate bot name ${JSON.stringify(name)}`);
      if (token.length < MIN_BOT_TOKEN_LENGTH || !B64TOKEN.test(token))
        throw new ConfigError(SETTING, `token of ${name} must be a b64token of at least ${MIN_BOT_TOKEN_LENGTH} characters`);
      names.add(name);
      return { name, digest: sha256(token) };
    });
  }

  /**
   * Parse the file format above. Error messages name the line, never the token.
   * @throws ConfigError on a malformed line.
   */
  static parse(text: string): BotTokenAuthenticator {
    const entries: { name: string; token: string }[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const colon = line.indexOf(":");
      const name = colon >= 0 ? line.slice(0, colon).trim() : `bot-${i + 1}`;
      const token = colon >= 0 ? line.slice(colon + 1).trim() : line;
      if (!token) throw new ConfigError(SETTING, `line ${i + 1}: empty token`);
      entries.push({ name, token });
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

  /**
   * The name of the bot whose token this is, or `null`. Constant time in the token's content:
   * both sides are SHA-256 digests compared with `timingSafeEqual`, and every entry is compared.
   */
  match(token: string): string | null {
    const digest = sha256(token);
    let found: string | null = null;
    for (const e of this.#entries) if (timingSafeEqual(digest, e.digest) && found === null) found = e.name;
    return found;
  }

  /** A `service` principal for a matching bearer token, else `null` (not ours; try the next). */
  principalFor(token: string): Principal | null {
    const name = this.match(token);
    return name === null ? null : { kind: "service", name };
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
