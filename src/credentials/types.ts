/**
 * Stored credential records per provider (the self-service PUT bodies) and the store interface.
 */
import type { ProviderName } from "./providers.ts";

/** github: a token (PAT or app token) and optional identity for git commits. */
export interface GithubCredential { token: string; userName?: string; email?: string; expiresAt?: string }
/** gitlab: a token, its instance (default https://gitlab.com) and optional identity. */
export interface GitlabCredential { token: string; instanceUrl?: string; userName?: string; email?: string }
/** jira: site URL, account e-mail and API token. */
export interface JiraCredential { url: string; email: string; apiToken: string }
/** google: OAuth tokens; `expiresAt` is ISO 8601. */
export interface GoogleCredential { accessToken: string; refreshToken?: string; email: string; scopes?: string[]; expiresAt: string; clientId?: string; clientSecret?: string }
/** coderabbit: an API key. */
export interface CoderabbitCredential { apiKey: string }
/** One Gerrit server and its HTTP password. */
export interface GerritInstance { name: string; url: string; username: string; httpPassword: string }
/** gerrit: one or more instances. */
export interface GerritCredential { instances: GerritInstance[] }

/** Map provider → record type. */
export interface CredentialRecords {
  github: GithubCredential;
  gitlab: GitlabCredential;
  jira: JiraCredential;
  google: GoogleCredential;
  coderabbit: CoderabbitCredential;
  gerrit: GerritCredential;
}
/** Any provider's record. */
export type AnyCredential = CredentialRecords[ProviderName];

/** Listing entry: never the secret values. `updatedAt` is ISO 8601. */
export interface CredentialSummary { provider: ProviderName; updatedAt: string }

/**
 * Per-user credential storage. Values are encrypted at rest in the embedded backend.
 * Errors: 405 `read_only_backend` for writes where the backend owns them; 503
 * `store_unavailable` when the store cannot be read (a turn then ends with RUN_ERROR).
 * A missing credential is `null`, not an error.
 */
export interface CredentialStore {
  readonly readOnly: boolean;
  get<P extends ProviderName>(userId: string, provider: P): Promise<CredentialRecords[P] | null>;
  put<P extends ProviderName>(userId: string, provider: P, value: CredentialRecords[P]): Promise<void>;
  delete(userId: string, provider: ProviderName): Promise<boolean>;
  list(userId: string): Promise<CredentialSummary[]>;
}
