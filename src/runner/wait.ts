/**
 * Waiting that ends early when a turn is stopped: the one helper behind retry back-off, health
 * polling and "wait for the client, unless the turn ends".
 */

/**
 * Resolve after `ms` milliseconds, or as soon as any of `signals` aborts (at once if one already
 * has). `ms = Infinity` waits for an abort only. Listeners and the timer are removed when it
 * resolves, so repeated waits do not pile up listeners. Never rejects.
 */
export function waitUntil(ms: number, signals: readonly AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    if (signals.some((s) => s.aborted)) return resolve();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener("abort", done);
      resolve();
    };
    if (Number.isFinite(ms)) timer = setTimeout(done, Math.max(0, ms));
    for (const s of signals) s.addEventListener("abort", done, { once: true });
  });
}
