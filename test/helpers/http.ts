/**
 * The JSON request helper every end-to-end gateway handle offers as `api`.
 */

/** Response of `api`: the status, the parsed JSON body (or the text when it is not JSON), headers. */
export type ApiResponse = { status: number; body: any; headers: Headers };
export type ApiOptions = { token?: string; body?: unknown; headers?: Record<string, string> };

/**
 * A request function bound to `baseUrl`. `opts.token` becomes a bearer `Authorization`; a
 * non-string `opts.body` is sent as JSON (`Content-Type: application/json` unless given).
 */
export function jsonApi(baseUrl: string): (method: string, path: string, opts?: ApiOptions) => Promise<ApiResponse> {
  return async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
      headers["content-type"] ??= "application/json";
    }
    const res = await fetch(baseUrl + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
}
