/**
 * Wait `ms` milliseconds; an aborted `signal` ends the wait early and resolves, so a stopping loop wakes
 * up and sees it is stopping. The one sleep outside workflow code (workflows use Temporal's durable
 * `sleep`).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
