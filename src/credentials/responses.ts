/**
 * Credential response bodies as the upstream platform's backend returns them, so its runners
 * work unchanged (DESIGN §2.3):
 * github `{token, userName, email, provider:"github", expiresAt?}`, gitlab `{token, instanceUrl,
 * userName, email, provider:"gitlab"}`, jira `{url, email, apiToken}`, google `{accessToken,
 * refreshToken, email, scopes, expiresAt}`, coderabbit `{apiKey}`, gerrit `{instances:[...]}`.
 */
import type { ProviderName } from "./providers.ts";
import type { CredentialRecords } from "./types.ts";

/** Upstream-shaped body for a stored record. `userId` fills `userName` when none was stored. */
export function credentialResponse<P extends ProviderName>(provider: P, record: CredentialRecords[P], userId: string): Record<string, unknown> {
  switch (provider) {
    case "github": {
      const r = record as CredentialRecords["github"];
      return { token: r.token, userName: r.userName ?? userId, email: r.email ?? "", provider: "github", ...(r.expiresAt ? { expiresAt: r.expiresAt } : {}) };
    }
    case "gitlab": {
      const r = record as CredentialRecords["gitlab"];
      return { token: r.token, instanceUrl: r.instanceUrl ?? "https://gitlab.com", userName: r.userName ?? userId, email: r.email ?? "", provider: "gitlab" };
    }
    case "jira": {
      const r = record as CredentialRecords["jira"];
      return { url: r.url, email: r.email, apiToken: r.apiToken };
    }
    case "google": {
      const r = record as CredentialRecords["google"];
      return { accessToken: r.accessToken, refreshToken: r.refreshToken ?? "", email: r.email, scopes: r.scopes ?? [], expiresAt: r.expiresAt };
    }
    case "coderabbit":
      return { apiKey: (record as CredentialRecords["coderabbit"]).apiKey };
    case "gerrit":
      return { instances: (record as CredentialRecords["gerrit"]).instances };
  }
  return {};
}
