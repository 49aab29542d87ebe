import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/errors.ts";
import { ForwardedHeadersAuthenticator } from "../../src/identity/forwarded.ts";

const fwd = new ForwardedHeadersAuthenticator(["127.0.0.1", "10.0.0.0/8", "fd00::/8"]);
const h = (o: Record<string, string>) => new Headers(o);

describe("ForwardedHeadersAuthenticator", () => {
  const rows: [string, string | undefined, Record<string, string>, object | null][] = [
    ["trusted exact address", "127.0.0.1", { "x-forwarded-user": "alice" }, { kind: "user", userId: "alice", userName: "alice", source: "forwarded" }],
    ["trusted IPv4-mapped IPv6", "::ffff:127.0.0.1", { "x-forwarded-user": "alice" }, { userId: "alice" }],
    ["trusted CIDR", "10.9.8.7", { "x-forwarded-user": "bob@example.com", "x-forwarded-preferred-username": "Bob" }, { userId: "bob-example.com", userName: "Bob" }],
    ["trusted IPv6 CIDR", "fd12::1", { "x-forwarded-user": "carol" }, { userId: "carol" }],
    ["preferred username alone", "127.0.0.1", { "x-forwarded-preferred-username": "dave" }, { userId: "dave", userName: "dave" }],
    ["untrusted address", "192.168.1.5", { "x-forwarded-user": "alice" }, null],
    ["untrusted IPv6", "::1", { "x-forwarded-user": "alice" }, null],
    ["no remote address", undefined, { "x-forwarded-user": "alice" }, null],
    ["trusted but no header", "127.0.0.1", {}, null],
    ["trusted but unusable user", "127.0.0.1", { "x-forwarded-user": "@@@" }, null],
  ];
  for (const [name, remoteAddress, headers, expected] of rows)
    test(name, async () => {
      const p = await fwd.authenticate({ headers: h(headers), ...(remoteAddress ? { remoteAddress } : {}) });
      if (expected === null) expect(p).toBeNull();
      else expect(p).toMatchObject(expected);
    });

  test("no trusted proxies configured → never honoured", async () => {
    const none = new ForwardedHeadersAuthenticator([]);
    expect(await none.authenticate({ headers: h({ "x-forwarded-user": "alice" }), remoteAddress: "127.0.0.1" })).toBeNull();
  });

  for (const bad of ["localhost", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8/1", "fd00::/129", ""])
    test(`rejects trusted proxy entry ${JSON.stringify(bad)}`, () => expect(() => new ForwardedHeadersAuthenticator([bad])).toThrow(ConfigError));
});
