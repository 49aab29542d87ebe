/**
 * Identity headers set by an authenticating reverse proxy (oauth2-proxy and the like, DESIGN §5):
 * `X-Forwarded-User` is the user ID and `X-Forwarded-Preferred-Username` the display name, as the
 * upstream platform reads them (the user ID falls back to the preferred username when the proxy
 * sends only that). Both are honoured only when the TCP peer is in `trustedProxies`; from anyone
 * else they are ignored here and stripped by the HTTP layer (`FORWARDED_IDENTITY_HEADERS`).
 */
import { BlockList, isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { ConfigError } from "../errors.ts";
import { sanitizeDisplayName, sanitizeUserId } from "../names.ts";
import type { Authenticator, Principal } from "./principal.ts";

/** Header names that carry a forwarded identity (lower case); strip them from untrusted peers. */
export const FORWARDED_IDENTITY_HEADERS: readonly string[] = [
  "x-forwarded-user",
  "x-forwarded-preferred-username",
  "x-forwarded-email",
  "x-forwarded-groups",
  "x-forwarded-access-token",
];

const ipFamily = (addr: string) => (isIP(addr) === 6 ? "ipv6" : "ipv4");

/** A dotted IPv4 address as an unsigned 32-bit integer. */
const ipv4ToInt = (addr: string) => addr.split(".").reduce((n, octet) => ((n << 8) | Number(octet)) >>> 0, 0);

/** This host's interface addresses (IPv4 and IPv6, loopback included), scope suffixes removed. */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.replace(/%.*$/, "")));
}

/**
 * Trusts forwarded identity headers from a fixed set of peers.
 * @example
 * const fwd = new ForwardedHeadersAuthenticator(["127.0.0.1", "10.0.0.0/8", "fd00::/8"]);
 * await fwd.authenticate({ headers, remoteAddress: "10.1.2.3" }); // user principal or null
 */
export class ForwardedHeadersAuthenticator implements Authenticator {
  #trusted = new BlockList();
  #count = 0;
  /** The IPv4 entries (IPv4-mapped IPv6 ones converted), for the loopback-overlap check. */
  #v4: { addr: number; prefix: number }[] = [];

  /**
   * @param trustedProxies `Config.trustedProxies`: IPv4/IPv6 addresses or CIDR ranges.
   * @throws ConfigError (`TURNKEY_TRUSTED_PROXIES`) for an entry that is neither.
   */
  constructor(trustedProxies: readonly string[]) {
    for (const entry of trustedProxies) {
      const [addr = "", bits, extra] = entry.trim().split("/");
      const family = isIP(addr);
      const prefix = bits === undefined ? undefined : Number(bits);
      const badPrefix = bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
      if (!family || extra !== undefined || badPrefix)
        throw new ConfigError("TURNKEY_TRUSTED_PROXIES", `not an IP address or CIDR range: ${JSON.stringify(entry)}`);
      if (prefix === undefined) this.#trusted.addAddress(addr, ipFamily(addr));
      else this.#trusted.addSubnet(addr, prefix, ipFamily(addr));
      this.#count++;
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr)?.[1];
      if (family === 4) this.#v4.push({ addr: ipv4ToInt(addr), prefix: prefix ?? 32 });
      else if (mapped && (prefix ?? 128) >= 96) this.#v4.push({ addr: ipv4ToInt(mapped), prefix: (prefix ?? 128) - 96 });
    }
  }

  /** Whether `remoteAddress` (as the server reports it, IPv4-mapped IPv6 included) is trusted. */
  isTrusted(remoteAddress: string | undefined): boolean {
    if (this.#count === 0 || !remoteAddress) return false;
    const addr = remoteAddress.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
    if (!isIP(addr)) return false;
    return this.#trusted.check(addr, ipFamily(addr));
  }

  /**
   * Whether some trusted entry covers an address a process on this host can connect from: any of
   * 127.0.0.0/8 (a local process can bind 127.0.0.2), `::1`, IPv4-mapped loopback, or one of
   * `localAddresses` (the host's own interface addresses, which local connections may use as their
   * source). Found by a second break-it review: checking 127.0.0.1 and ::1 alone let a runner come
   * from 127.0.0.2.
   */
  trustsLocalPeers(localAddresses: readonly string[] = hostAddresses()): boolean {
    const loopback = ipv4ToInt("127.0.0.0");
    const overlaps8 = (e: { addr: number; prefix: number }) => {
      const bits = Math.min(e.prefix, 8);
      return bits === 0 || e.addr >>> (32 - bits) === loopback >>> (32 - bits);
    };
    if (this.#v4.some(overlaps8)) return true;
    return ["::1", "::ffff:127.0.0.1", ...localAddresses].some((a) => this.isTrusted(a));
  }

  /**
   * @returns a `user` principal (`source: "forwarded"`) when the peer is trusted and sends a
   *   non-empty `X-Forwarded-User` (or `X-Forwarded-Preferred-Username`); otherwise `null`.
   *   Never throws: untrusted or empty headers simply do not identify anyone.
   */
  async authenticate(req: { headers: Headers; remoteAddress?: string }): Promise<Principal | null> {
    if (!this.isTrusted(req.remoteAddress)) return null;
    const user = req.headers.get("x-forwarded-user") ?? "";
    const preferred = req.headers.get("x-forwarded-preferred-username") ?? "";
    const raw = sanitizeUserId(user) ? user : preferred;
    const userId = sanitizeUserId(raw);
    if (!userId) return null;
    const userName = sanitizeDisplayName(preferred) || userId;
    return { kind: "user", userId, userName, source: "forwarded", username: raw };
  }
}
