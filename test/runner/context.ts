/**
 * Test helper: a `TurnContext` with every provider filled in (override per test), and secret
 * values long and distinctive enough for the scrubber.
 */
import type { RunAgentInput } from "@ag-ui/core";
import type { TurnContext } from "../../src/runner/types.ts";

/** The secret values `makeContext` uses, for assertions. */
export const SECRETS = {
  github: "ghp_TESTgithubTOKEN0123456789",
  gitlab: "glpat-TESTgitlabTOKEN98765",
  jira: "jira-TEST-api-token-4242",
  googleAccess: "ya29.TEST-google-access-token",
  googleRefresh: "1//TEST-google-refresh-token",
  googleClientSecret: "GOCSPX-TEST-client-secret",
  coderabbit: "cr-TEST-coderabbit-key-777",
  gerrit: "gerrit-TEST-http-password",
  turnToken: "eyJTEST.turn-token.signature-part",
} as const;

/** A RunAgentInput for `ctx`; `forwardedProps` drives the fixture runners. */
export function makeInput(threadId: string, runId: string, forwardedProps: Record<string, unknown> = {}): RunAgentInput {
  return {
    threadId,
    runId,
    state: {},
    messages: [{ id: "m1", role: "user", content: "hello" }],
    tools: [],
    context: [],
    forwardedProps,
  };
}

/** A full TurnContext; `overrides` replace top-level fields. */
export function makeContext(overrides: Partial<TurnContext> = {}, forwardedProps: Record<string, unknown> = {}): TurnContext {
  const threadId = overrides.threadId ?? "thread-1";
  const runId = overrides.runId ?? `run-${Math.random().toString(36).slice(2, 10)}`;
  return {
    project: "proj-a",
    session: "sess-1",
    threadId,
    runId,
    userId: "alice",
    userName: "Alice Example",
    userEmail: "alice@example.com",
    turnToken: SECRETS.turnToken,
    credentialsUrl: "http://127.0.0.1:9/api",
    credentials: {
      github: { token: SECRETS.github, userName: "alice-gh", email: "alice@users.noreply.github.com" },
      gitlab: { token: SECRETS.gitlab, instanceUrl: "https://gitlab.com", userName: "alice-gl", email: "alice@gitlab.example" },
      jira: { url: "https://jira.example.com", email: "alice@example.com", apiToken: SECRETS.jira },
      google: {
        accessToken: SECRETS.googleAccess,
        refreshToken: SECRETS.googleRefresh,
        email: "alice@gmail.example",
        scopes: ["email"],
        expiresAt: "2030-01-01T00:00:00Z",
        clientId: "client-id.apps.googleusercontent.com",
        clientSecret: SECRETS.googleClientSecret,
      },
      coderabbit: { apiKey: SECRETS.coderabbit },
      gerrit: { instances: [{ name: "g", url: "https://gerrit.example", username: "alice", httpPassword: SECRETS.gerrit }] },
    },
    input: makeInput(threadId, runId, forwardedProps),
    deadline: Date.now() + 30_000,
    signal: new AbortController().signal,
    ...overrides,
  };
}
