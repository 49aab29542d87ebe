import { describe, expect, test } from "bun:test";
import { buildTurnEnvironment, isReservedName } from "../../src/credentials/turn-environment.ts";
import type { TurnContext } from "../../src/runner/types.ts";
import { makeContext, SECRETS } from "../runner/context.ts";

const TURN_DIR = "/data/turns/turn-AbC 1";
const BASE_ENV = {
  PATH: "/usr/bin:/bin",
  HOME: "/home/gateway",
  LANG: "C.UTF-8",
  TZ: "UTC",
  TURNKEY_MASTER_KEY: "master-key-must-not-leak-0000000000000000000",
  TURNKEY_LEAK_MARKER: "marker",
  AWS_SECRET_ACCESS_KEY: "aws-must-not-leak",
  GITHUB_TOKEN: "gateway-wide-github-token",
  HTTPS_PROXY: "http://proxy:3128",
};
const opts = (extra: Partial<Parameters<typeof buildTurnEnvironment>[1]> = {}) => ({
  turnDir: TURN_DIR,
  passthrough: [] as string[],
  baseEnv: BASE_ENV,
  githubHosts: ["github.com"],
  gitlabHosts: ["gitlab.com"],
  ...extra,
});
const only = (provider: keyof TurnContext["credentials"] | "none") => {
  const full = makeContext().credentials;
  return makeContext({ credentials: provider === "none" ? {} : { [provider]: full[provider] } });
};

const PER_PROVIDER: Record<string, { vars: string[]; files: string[] }> = {
  github: { vars: ["GITHUB_TOKEN", "GH_TOKEN"], files: ["github_token"] },
  gitlab: { vars: ["GITLAB_TOKEN"], files: ["gitlab_token"] },
  jira: { vars: ["JIRA_URL", "JIRA_EMAIL", "JIRA_API_TOKEN"], files: [] },
  google: { vars: ["USER_GOOGLE_EMAIL", "GOOGLE_APPLICATION_CREDENTIALS"], files: ["google_credentials.json"] },
  coderabbit: { vars: ["CODERABBIT_API_KEY"], files: [] },
  gerrit: { vars: [], files: [] },
};
const ALWAYS_VARS = [
  "PATH", "HOME", "LANG", "TZ", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "GIT_TERMINAL_PROMPT", "GIT_USER_NAME",
  "GIT_USER_EMAIL", "TURNKEY_TURN_TOKEN", "TURNKEY_CREDENTIALS_URL", "PROJECT_NAME", "SESSION_ID", "THREAD_ID",
  "RUN_ID", "CURRENT_USER_ID", "CURRENT_USER_NAME",
];

describe("buildTurnEnvironment: variables and files per provider", () => {
  for (const [provider, want] of Object.entries(PER_PROVIDER)) {
    test(`${provider} only`, () => {
      const te = buildTurnEnvironment(only(provider as "github"), opts());
      expect(Object.keys(te.env).sort()).toEqual([...ALWAYS_VARS, ...want.vars].sort());
      expect(te.files.map((f) => f.name).sort()).toEqual([...want.files, "gitconfig"].sort());
      for (const f of te.files) expect(f.mode).toBe(0o600);
    });
  }
  test("no credentials: only the always-present variables", () => {
    const te = buildTurnEnvironment(only("none"), opts());
    expect(Object.keys(te.env).sort()).toEqual([...ALWAYS_VARS].sort());
    expect(te.secrets).toEqual([SECRETS.turnToken]);
  });
});

describe("buildTurnEnvironment: values", () => {
  const te = buildTurnEnvironment(makeContext(), opts());
  test.each([
    ["GITHUB_TOKEN", SECRETS.github],
    ["GH_TOKEN", SECRETS.github],
    ["GITLAB_TOKEN", SECRETS.gitlab],
    ["JIRA_API_TOKEN", SECRETS.jira],
    ["JIRA_URL", "https://jira.example.com"],
    ["CODERABBIT_API_KEY", SECRETS.coderabbit],
    ["USER_GOOGLE_EMAIL", "alice@gmail.example"],
    ["GOOGLE_APPLICATION_CREDENTIALS", `${TURN_DIR}/google_credentials.json`],
    ["GIT_CONFIG_GLOBAL", `${TURN_DIR}/gitconfig`],
    ["GIT_CONFIG_NOSYSTEM", "1"],
    ["GIT_TERMINAL_PROMPT", "0"],
    ["GIT_USER_NAME", "Alice Example"],
    ["GIT_USER_EMAIL", "alice@users.noreply.github.com"],
    ["TURNKEY_TURN_TOKEN", SECRETS.turnToken],
    ["TURNKEY_CREDENTIALS_URL", "http://127.0.0.1:9/api"],
    ["PROJECT_NAME", "proj-a"],
    ["SESSION_ID", "sess-1"],
    ["THREAD_ID", "thread-1"],
    ["CURRENT_USER_ID", "alice"],
    ["CURRENT_USER_NAME", "Alice Example"],
    ["HOME", TURN_DIR],
    ["PATH", "/usr/bin:/bin"],
  ])("%s", (name, value) => expect(te.env[name]).toBe(value));

  test("token files hold the token, google file has the authorized-user shape", () => {
    expect(te.files.find((f) => f.name === "github_token")?.content).toBe(SECRETS.github);
    const google = JSON.parse(te.files.find((f) => f.name === "google_credentials.json")!.content);
    expect(google).toEqual({
      token: SECRETS.googleAccess,
      refresh_token: SECRETS.googleRefresh,
      token_uri: "https://oauth2.googleapis.com/token",
      client_id: "client-id.apps.googleusercontent.com",
      client_secret: SECRETS.googleClientSecret,
      scopes: ["email"],
      expiry: "2030-01-01T00:00:00Z",
    });
  });

  test("secrets list every injected secret value, including gerrit passwords", () => {
    expect(te.secrets.sort()).toEqual(Object.values(SECRETS).sort());
  });

  test("the gitconfig does not contain the token itself", () => {
    const gc = te.files.find((f) => f.name === "gitconfig")!.content;
    expect(gc).not.toContain(SECRETS.github);
    expect(gc).not.toContain(SECRETS.gitlab);
    expect(gc).toContain('[credential "https://github.com"]');
    expect(gc).toContain('[credential "https://gitlab.com"]');
  });
});

describe("buildTurnEnvironment: the gateway environment does not leak", () => {
  test("only allowlisted names are inherited", () => {
    const te = buildTurnEnvironment(only("none"), opts());
    for (const name of ["TURNKEY_MASTER_KEY", "TURNKEY_LEAK_MARKER", "AWS_SECRET_ACCESS_KEY", "HTTPS_PROXY", "GITHUB_TOKEN"])
      expect(te.env[name]).toBeUndefined();
    expect(Object.values(te.env)).not.toContain(BASE_ENV.TURNKEY_MASTER_KEY);
  });
  test("passthrough adds configured names, but never reserved or TURNKEY_ ones", () => {
    const te = buildTurnEnvironment(only("none"), opts({ passthrough: ["HTTPS_PROXY", "GITHUB_TOKEN", "TURNKEY_MASTER_KEY", "UNSET_NAME"] }));
    expect(te.env.HTTPS_PROXY).toBe("http://proxy:3128");
    expect(te.env.GITHUB_TOKEN).toBeUndefined();
    expect(te.env.TURNKEY_MASTER_KEY).toBeUndefined();
    expect("UNSET_NAME" in te.env).toBe(false);
  });
  test("the sender's token wins over a passthrough of the same name", () => {
    const te = buildTurnEnvironment(only("github"), opts({ passthrough: ["GITHUB_TOKEN"] }));
    expect(te.env.GITHUB_TOKEN).toBe(SECRETS.github);
  });
  test("HOME is the turn dir unless HOME is passed through", () => {
    expect(buildTurnEnvironment(only("none"), opts()).env.HOME).toBe(TURN_DIR);
    expect(buildTurnEnvironment(only("none"), opts({ passthrough: ["HOME"] })).env.HOME).toBe("/home/gateway");
  });
  test.each([["GITHUB_TOKEN", true], ["TURNKEY_X", true], ["RUN_ID", true], ["HTTPS_PROXY", false]])("isReservedName(%s) = %p", (n, r) =>
    expect(isReservedName(n)).toBe(r),
  );
});

describe("buildTurnEnvironment: git identity", () => {
  test.each([
    ["github email first", makeContext(), "alice@users.noreply.github.com"],
    ["gitlab email without github", makeContext({ credentials: { gitlab: { token: SECRETS.gitlab, email: "a@gl.example" } } }), "a@gl.example"],
    ["directory email", makeContext({ credentials: {} }), "alice@example.com"],
    ["fallback .invalid", makeContext({ credentials: {}, userEmail: undefined }), "alice@users.turnkey.invalid"],
  ])("%s", (_name, ctx, email) => {
    expect(buildTurnEnvironment(ctx, opts()).env.GIT_USER_EMAIL).toBe(email);
  });
});
