import { describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { TurnkeyError } from "../../src/errors.ts";
import { PROVIDERS, type ProviderName } from "../../src/credentials/providers.ts";
import { CREDENTIAL_SCHEMAS, parseCredential } from "../../src/credentials/schemas.ts";

/** A distinctive value that must never appear in an error message. */
const CANARY = "SeCrEt-CaNaRy-9f8e7d";
const LONG = "x".repeat(8193);

const gerritInstance = { name: "review", url: "https://review.example.com", username: "alice", httpPassword: "pw123" };

const valid: Record<ProviderName, unknown[]> = {
  github: [{ token: "ghp_abc" }, { token: "ghp_abc", userName: "Alice A.", email: "alice@example.com" }, { token: "x".repeat(8192) }],
  gitlab: [{ token: "glpat-abc" }, { token: "glpat-abc", instanceUrl: "https://gitlab.example.com/", userName: "alice", email: "a@b.c" }],
  jira: [{ url: "https://acme.atlassian.net", email: "alice@acme.com", apiToken: "ATATT3x" }],
  google: [
    { accessToken: "ya29.a0", email: "alice@gmail.com", expiresAt: "2025-01-02T03:04:05Z" },
    { accessToken: "ya29.a0", refreshToken: "1//0g", email: "alice@gmail.com", scopes: ["https://www.googleapis.com/auth/drive"], expiresAt: "2025-01-02T03:04:05.123+02:00" },
  ],
  coderabbit: [{ apiKey: "cr-abc" }],
  gerrit: [{ instances: [gerritInstance] }, { instances: [gerritInstance, { ...gerritInstance, name: "other", url: "http://gerrit.internal:8080/r" }] }],
};

/** [provider, why, body, field the message must name]. Every bad value carries the canary where it can. */
const invalid: [ProviderName, string, unknown, string][] = [
  ["github", "missing token", {}, "token"],
  ["github", "not an object", CANARY, "body"],
  ["github", "array body", [CANARY], "body"],
  ["github", "null body", null, "body"],
  ["github", "empty token", { token: "" }, "token"],
  ["github", "token too long", { token: LONG }, "token"],
  ["github", "token with whitespace", { token: `${CANARY} x` }, "token"],
  ["github", "token not a string", { token: 12345 }, "token"],
  ["github", "extra field", { token: "ok", tokne: CANARY }, "tokne"],
  ["github", "extra field with a hostile name", { token: "ok", "a\nb<script>": CANARY }, "a?b?script?"],
  ["github", "expiresAt is not self-service", { token: "ok", expiresAt: "2025-01-02T03:04:05Z" }, "expiresAt"],
  ["github", "newline in userName (gitconfig injection)", { token: "ok", userName: `${CANARY}\n[core]` }, "userName"],
  ["github", "bad email", { token: "ok", email: CANARY }, "email"],
  ["gitlab", "ftp instanceUrl", { token: "ok", instanceUrl: `ftp://${CANARY}` }, "instanceUrl"],
  ["gitlab", "javascript: instanceUrl", { token: "ok", instanceUrl: `javascript:${CANARY}` }, "instanceUrl"],
  ["gitlab", "unparseable URL", { token: "ok", instanceUrl: `https://[${CANARY}` }, "instanceUrl"],
  ["jira", "missing apiToken", { url: "https://a.b", email: "a@b.c" }, "apiToken"],
  ["jira", "missing email", { url: "https://a.b", apiToken: CANARY }, "email"],
  ["jira", "relative url", { url: `/${CANARY}`, email: "a@b.c", apiToken: "ok" }, "url"],
  ["jira", "password in the url", { url: `https://u:${CANARY}@acme.atlassian.net`, email: "a@b.c", apiToken: "ok" }, "url"],
  ["google", "missing expiresAt", { accessToken: CANARY, email: "a@b.c" }, "expiresAt"],
  ["google", "expiresAt not ISO", { accessToken: "ok", email: "a@b.c", expiresAt: `tomorrow ${CANARY}` }, "expiresAt"],
  ["google", "expiresAt epoch number", { accessToken: "ok", email: "a@b.c", expiresAt: 1735787045 }, "expiresAt"],
  ["google", "expiresAt impossible month", { accessToken: "ok", email: "a@b.c", expiresAt: "2025-13-02T03:04:05Z" }, "expiresAt"],
  ["google", "scopes not array", { accessToken: "ok", email: "a@b.c", expiresAt: "2025-01-02T03:04:05Z", scopes: CANARY }, "scopes"],
  ["google", "scope not string", { accessToken: "ok", email: "a@b.c", expiresAt: "2025-01-02T03:04:05Z", scopes: ["a", 7] }, "scopes[1]"],
  ["google", "empty refreshToken", { accessToken: "ok", refreshToken: "", email: "a@b.c", expiresAt: "2025-01-02T03:04:05Z" }, "refreshToken"],
  ["coderabbit", "token instead of apiKey", { token: CANARY }, "apiKey"],
  ["coderabbit", "apiKey too long", { apiKey: LONG }, "apiKey"],
  ["gerrit", "no instances", { instances: [] }, "instances"],
  ["gerrit", "instances missing", {}, "instances"],
  ["gerrit", "instance missing password", { instances: [{ name: "r", url: "https://r.example", username: "a" }] }, "instances[0].httpPassword"],
  ["gerrit", "second instance bad url", { instances: [gerritInstance, { ...gerritInstance, name: "x", url: `git://${CANARY}` }] }, "instances[1].url"],
  ["gerrit", "instance extra field", { instances: [{ ...gerritInstance, token: CANARY }] }, "instances[0].token"],
  ["gerrit", "duplicate instance names", { instances: [gerritInstance, { ...gerritInstance, httpPassword: CANARY }] }, "instances[1].name"],
];

describe("CREDENTIAL_SCHEMAS", () => {
  test("one schema per provider, all strict", () => {
    expect(Object.keys(CREDENTIAL_SCHEMAS).sort()).toEqual([...PROVIDERS].sort());
    for (const p of PROVIDERS) expect((CREDENTIAL_SCHEMAS[p] as { additionalProperties?: boolean }).additionalProperties).toBe(false);
  });
});

describe("parseCredential: valid bodies", () => {
  for (const p of PROVIDERS)
    valid[p].forEach((body, i) =>
      test(`${p} #${i}`, () => {
        expect(Value.Check(CREDENTIAL_SCHEMAS[p], body)).toBe(true);
        const parsed = parseCredential(p, body);
        expect(parsed).toEqual(body as never);
        expect(parsed).not.toBe(body as never); // a copy
      }),
    );
});

describe("parseCredential: invalid bodies → 400 validation_failed naming the field, never the value", () => {
  for (const [p, why, body, field] of invalid)
    test(`${p}: ${why}`, () => {
      let err: unknown;
      try {
        parseCredential(p, body);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TurnkeyError);
      const e = err as TurnkeyError;
      expect([e.status, e.code]).toEqual([400, "validation_failed"]);
      expect(e.message).toContain(field);
      expect(e.message).not.toContain(CANARY);
      expect(e.message).not.toContain("xxxxxxxx");
      expect(e.message).not.toContain("SeCrEt");
    });
});

test("unknown provider → 400 unknown_provider", () => {
  expect(() => parseCredential("mcp" as ProviderName, {})).toThrow(expect.objectContaining({ code: "unknown_provider", status: 400 }));
});
