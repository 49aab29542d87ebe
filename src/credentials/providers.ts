/**
 * Provider names (DESIGN §1). `mcp/:server` is reserved for later.
 */
export const PROVIDERS = ["github", "gitlab", "jira", "google", "coderabbit", "gerrit"] as const;
/** One of `PROVIDERS`. */
export type ProviderName = (typeof PROVIDERS)[number];

/** True iff `name` is a known provider. */
export function isProvider(name: string): name is ProviderName {
  return (PROVIDERS as readonly string[]).includes(name);
}
