/**
 * Name rules shared by every layer (DESIGN §1).
 */

/** DNS-1123 label: 1-63 chars of `[a-z0-9-]`, starting and ending alphanumeric (Kubernetes names). */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** `DNS1123_LABEL` as a string, for JSON/TypeBox schemas. */
export const DNS1123_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/** True iff `name` is a DNS-1123 label of at most 63 characters. */
export function isDns1123Label(name: string): boolean {
  return name.length >= 1 && name.length <= 63 && DNS1123_LABEL.test(name);
}

/**
 * Sanitise a user ID exactly as the upstream platform does, so IDs match its Secret keys:
 * every char outside `[A-Za-z0-9._-]` becomes `-`, runs of `-` collapse, leading/trailing `-`
 * are trimmed, and the result is cut to 253 chars. Returns "" for input with no usable char.
 */
export function sanitizeUserId(raw: string): string {
  return raw
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 253)
    .replace(/-+$/g, "");
}

/**
 * Sanitise a display name for an HTTP header value (issue 3): control characters (including CR
 * and LF, which would split headers) removed, at most 255 chars.
 */
export function sanitizeDisplayName(raw: string): string {
  // eslint-disable-next-line no-control-regex
  return raw.replace(/[\u0000-\u001f\u007f]/g, "").slice(0, 255);
}
