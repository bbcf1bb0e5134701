export type BackoffOptions = {
  /** First retry waits up to this long (ms). */
  baseMs: number;
  /** No wait is longer than this (ms). */
  maxMs: number;
};

/**
 * "Full jitter" (random between 0 and the exponential cap): many racks retrying the same region after an
 * outage spread out instead of arriving in waves. `failure` counts from 1.
 */
export function backoffDelay(
  failure: number,
  { baseMs, maxMs }: BackoffOptions,
  random = Math.random,
): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, failure - 1));
  return Math.floor(random() * cap);
}

/** Retry-After as milliseconds (delta-seconds or an HTTP date), or null when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return null;
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Waits ms, or rejects with the signal's reason as soon as it is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
