import { describe, expect, test } from "bun:test";
import { loadConfig, redactConfig, publicBaseUrl } from "../src/config.ts";
import { ConfigError } from "../src/errors.ts";

describe("loadConfig", () => {
  test("defaults", () => {
    const c = loadConfig({});
    expect(c.host).toBe("127.0.0.1");
    expect(c.port).toBe(8080);
    expect(c.turnTimeoutMs).toBe(30 * 60 * 1000);
    expect(c.teardownGraceMs).toBe(5000);
    expect(c.providers).toContain("github");
    expect(c.runnerCommand.at(-1)).toEndWith("examples/runners/hello.ts");
  });

  test("environment, then flags win", () => {
    const c = loadConfig({ TURNKEY_PORT: "9000", TURNKEY_PROVIDERS: "github,jira", TURNKEY_RUNNER_COMMAND: '["python3","r.py"]' }, { port: "9100" });
    expect(c.port).toBe(9100);
    expect(c.providers).toEqual(["github", "jira"]);
    expect(c.runnerCommand).toEqual(["python3", "r.py"]);
  });

  test.each([
    [{ TURNKEY_PORT: "eighty" }, "TURNKEY_PORT"],
    [{ TURNKEY_PORT: "70000" }, "TURNKEY_PORT"],
    [{ TURNKEY_RUNNER_COMMAND: "python3 r.py" }, "TURNKEY_RUNNER_COMMAND"],
    [{ TURNKEY_RUNNER_COMMAND: "[]" }, "TURNKEY_RUNNER_COMMAND"],
    [{ TURNKEY_PROVIDERS: "github,myspace" }, "TURNKEY_PROVIDERS"],
    [{ TURNKEY_BACKEND: "etcd" }, "TURNKEY_BACKEND"],
    [{ TURNKEY_MASTER_KEY: "short" }, "TURNKEY_MASTER_KEY"],
    [{ TURNKEY_RUNNER_ENV_PASSTHROUGH: "OK,bad-name" }, "TURNKEY_RUNNER_ENV_PASSTHROUGH"],
    [{ TURNKEY_OIDC_DISCOVERY: "google" }, "TURNKEY_OIDC_DISCOVERY"],
    [{ TURNKEY_OIDC_DISCOVERY: "serviceaccount", TURNKEY_JWT_ISSUER: "https://kubernetes.default.svc" }, "TURNKEY_OIDC_DISCOVERY"],
    [{ TURNKEY_OIDC_DISCOVERY: "serviceaccount", TURNKEY_BACKEND: "kubernetes" }, "TURNKEY_OIDC_DISCOVERY"],
    [{ TURNKEY_OIDC_DISCOVERY: "serviceaccount", TURNKEY_BACKEND: "kubernetes", TURNKEY_JWT_ISSUER: "https://k", TURNKEY_JWKS_URL: "https://idp/jwks" }, "TURNKEY_OIDC_DISCOVERY"],
    [{ TURNKEY_OIDC_DISCOVERY: "issuer" }, "TURNKEY_OIDC_DISCOVERY"],
    [{ TURNKEY_OIDC_DISCOVERY: "issuer", TURNKEY_JWT_ISSUER: "https://idp.example", TURNKEY_JWKS_URL: "https://idp.example/jwks" }, "TURNKEY_OIDC_DISCOVERY"],
    [{ TURNKEY_OIDC_DISCOVERY: "issuer", TURNKEY_JWT_ISSUER: "idp.example" }, "TURNKEY_JWT_ISSUER"],
    [{ TURNKEY_OIDC_DISCOVERY: "issuer", TURNKEY_JWT_ISSUER: "http://idp.example" }, "TURNKEY_JWT_ISSUER"],
    [{ TURNKEY_OIDC_DISCOVERY: "issuer", TURNKEY_JWT_ISSUER: "https://idp.example/?realm=x" }, "TURNKEY_JWT_ISSUER"],
  ] as const)("%p is refused naming %s", (env, setting) => {
    try {
      loadConfig(env as Record<string, string>);
      throw new Error("expected ConfigError");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).setting).toBe(setting);
      expect((err as Error).message).toContain(setting);
    }
  });

  test("serviceaccount OIDC discovery: kubernetes backend, pinned issuer, no JWKS URL", () => {
    const c = loadConfig({ TURNKEY_OIDC_DISCOVERY: "serviceaccount", TURNKEY_BACKEND: "kubernetes", TURNKEY_JWT_ISSUER: "https://kubernetes.default.svc.cluster.local" });
    expect([c.oidcDiscovery, c.jwtIssuer]).toEqual(["serviceaccount", "https://kubernetes.default.svc.cluster.local"]);
    expect(loadConfig({}).oidcDiscovery).toBe("off");
  });

  test.each(["https://idp.example/realms/acme", "http://127.0.0.1:8180/realms/acme", "http://localhost:5556/dex"])("issuer OIDC discovery of %s: either backend", (issuer) => {
    for (const backend of ["embedded", "kubernetes"]) {
      const c = loadConfig({ TURNKEY_OIDC_DISCOVERY: "issuer", TURNKEY_BACKEND: backend, TURNKEY_JWT_ISSUER: issuer });
      expect([c.oidcDiscovery, c.jwtIssuer]).toEqual(["issuer", issuer]);
    }
  });

  test("a secret is never accepted as a flag (the command line is world-readable), even a valid one", () => {
    const key = "A".repeat(43);
    expect(() => loadConfig({}, { masterKey: key })).toThrow(/--master-key.*not accepted as flags/);
    expect(loadConfig({ TURNKEY_MASTER_KEY: key }).masterKey).toBe(key);
  });

  test("a bad flag is named as a flag", () => {
    expect(() => loadConfig({}, { turnTimeoutMs: "soon" })).toThrow("--turn-timeout-ms");
  });

  test("redaction hides the master key", () => {
    const key = "A".repeat(43);
    const r = redactConfig(loadConfig({ TURNKEY_MASTER_KEY: key }));
    expect(JSON.stringify(r)).not.toContain(key);
    expect(r.masterKey).toBe("[REDACTED]");
  });

  test("public base URL", () => {
    expect(publicBaseUrl(loadConfig({ TURNKEY_HOST: "0.0.0.0" }), 1234)).toBe("http://127.0.0.1:1234");
    expect(publicBaseUrl(loadConfig({ TURNKEY_PUBLIC_URL: "https://tk.example/" }))).toBe("https://tk.example");
  });
});
