import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/errors.ts";
import { ForwardedHeadersAuthenticator, hostAddresses } from "../../src/identity/forwarded.ts";
import { runnersShareLoopback } from "../../src/server.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { openWs } from "../helpers/streams.ts";

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

describe("loopback trust (a runner on this host could pose as the proxy)", () => {
  test.each([
    [["127.0.0.1"], true],
    [["127.0.0.2"], true], // any local process can bind 127.0.0.2
    [["127.255.0.0/16"], true],
    [["127.0.0.0/8"], true],
    [["64.0.0.0/2"], true], // covers 127/8
    [["::1"], true],
    [["::ffff:127.0.0.9"], true],
    [["::ffff:0:0/96"], true],
    [["0.0.0.0/0"], true],
    [["::/0"], true],
    [["192.0.2.2"], true], // this host's own address (given below)
    [["192.0.2.0/24"], true],
    [["10.0.0.5", "fd00::/8", "200.0.0.0/8"], false],
    [[], false],
  ])("%p trusts a local peer: %p", (entries, want) => {
    expect(new ForwardedHeadersAuthenticator(entries).trustsLocalPeers(["192.0.2.2", "fe80::1"])).toBe(want);
  });

  test("by default the host's own interface addresses count as local", () => {
    const own = hostAddresses().find((a) => !a.startsWith("127.") && a !== "::1");
    if (own) expect(new ForwardedHeadersAuthenticator([own]).trustsLocalPeers()).toBe(true);
    expect(hostAddresses()).toContain("127.0.0.1");
  });

  test.each([
    [undefined, true], // spawned runners live here
    ["http://127.0.0.1:8001/", true],
    ["http://localhost:8001/", true],
    ["http://[::1]:8001/", true],
    ["http://session-{session}.{project}.svc.cluster.local:8001/", false],
    ["http://10.0.0.7:8001/", false],
    ["http://0.0.0.0:8001/", true],
    ["http://192.0.2.2:8001/", true], // this host's own address (given below)
  ])("runner URL %p runs on this host: %p", (runnerUrl, want) => {
    expect(runnersShareLoopback(runnerUrl ? { runnerUrl } : {}, ["127.0.0.1", "192.0.2.2"])).toBe(want);
  });
});

describe("the gateway and TURNKEY_TRUSTED_PROXIES", () => {
  test("loopback trust with runners on this host refuses to start", async () => {
    await expect(startGateway({ TURNKEY_TRUSTED_PROXIES: "127.0.0.1" })).rejects.toThrow(/TURNKEY_TRUSTED_PROXIES/);
    await expect(startGateway({ TURNKEY_TRUSTED_PROXIES: "127.0.0.1", TURNKEY_RUNNER_URL: "http://127.0.0.1:8001/" })).rejects.toThrow(/TURNKEY_TRUSTED_PROXIES/);
    await expect(startGateway({ TURNKEY_TRUSTED_PROXIES: "127.0.0.2" })).rejects.toThrow(/TURNKEY_TRUSTED_PROXIES/);
  });

  test("with runners elsewhere, a loopback proxy's X-Forwarded-User is the caller; without trust the header is ignored", async () => {
    const trusted = await startGateway({ TURNKEY_TRUSTED_PROXIES: "127.0.0.1,::1", TURNKEY_RUNNER_URL: "http://runner.invalid:8001/" });
    const plain = await startGateway({});
    try {
      const create = (gw: TestGateway) => fetch(`${gw.url}/api/projects/demo/agentic-sessions`, { method: "POST", headers: { "content-type": "application/json", "x-forwarded-user": "alice@example.com", "x-forwarded-preferred-username": "Alice" }, body: JSON.stringify({ name: "s" }) });
      const ok = await create(trusted);
      expect(ok.status).toBe(201);
      expect(await ok.json()).toMatchObject({ ownerId: "alice-example.com", ownerName: "Alice" });
      expect((await create(plain)).status).toBe(401);
      // The WebSocket honours the trusted proxy too, and only it.
      const path = "/api/projects/demo/agentic-sessions/s/agui/ws";
      const fwd = { "x-forwarded-user": "alice@example.com" };
      const viaProxy = await openWs(trusted.url + path, { headers: fwd });
      expect(await Promise.race([viaProxy.closed.then(() => "closed"), Bun.sleep(500).then(() => "open")])).toBe("open");
      viaProxy.close();
      expect((await (await openWs(plain.url + path, { headers: fwd })).closed).code).toBe(1008);
    } finally {
      await trusted.stop();
      await plain.stop();
    }
  });
});
