/** What the limiter needs from time; tests pass a fake one that advances on sleep. */
export type LimiterClock = { now(): number; sleep(ms: number): Promise<void> };

const realClock: LimiterClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** A waiting take looks at the limit again at least this often, so a changed limit applies at once. */
export const BANDWIDTH_RECHECK_MS = 250;
/** The bucket holds at most this much of a second's allowance (and at least 64 KiB): short bursts only. */
const BURST_SECONDS = 0.1;
const MIN_BURST_BYTES = 64 * 1024;

/**
 * One token bucket shared by every download it is handed to (all concurrent downloads of an import,
 * or of a rack's sync), so the limit holds for their sum. `take` lets a batch through as soon as the
 * bucket is not in debt and charges it whole, so any batch size works; the debt is waited off before
 * the next batch. `setLimit` applies to batches already waiting. A null limit lets everything through.
 */
export class BandwidthLimiter {
  private limit: number | null;
  private tokens: number;
  private last: number;

  constructor(
    bytesPerSecond: number | null = null,
    private readonly clock: LimiterClock = realClock,
  ) {
    this.limit = checkLimit(bytesPerSecond);
    this.last = clock.now();
    this.tokens = this.burst();
  }

  get bytesPerSecond(): number | null {
    return this.limit;
  }

  setLimit(bytesPerSecond: number | null): void {
    this.refill();
    this.limit = checkLimit(bytesPerSecond);
    // Debt run up under a lower limit is not carried into a higher one.
    this.tokens = this.limit === null ? 0 : Math.max(0, Math.min(this.tokens, this.burst()));
  }

  /**
   * Resolves when `bytes` may be passed on; rejects with the signal's reason once it aborts (within
   * BANDWIDTH_RECHECK_MS). Under a low cap the debt of one batch is long (64 KiB at 1000 B/s: 65 s):
   * a stop, a shutdown or a closing window must not wait it off.
   */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if (this.limit === null) return;
      this.refill();
      if (this.tokens >= 0) {
        this.tokens -= bytes;
        return;
      }
      const wait = Math.ceil((-this.tokens / this.limit) * 1000);
      await this.clock.sleep(Math.max(1, Math.min(BANDWIDTH_RECHECK_MS, wait)));
    }
  }

  private burst(): number {
    return this.limit === null ? 0 : Math.max(MIN_BURST_BYTES, this.limit * BURST_SECONDS);
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.last) / 1000;
    this.last = now;
    if (this.limit !== null) this.tokens = Math.min(this.burst(), this.tokens + elapsed * this.limit);
  }
}

function checkLimit(value: number | null): number | null {
  if (value === null) return null;
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`bandwidth limit must be > 0 bytes/s: ${value}`);
  return value;
}

// How people write a cap (the CLI, the rack flag, the dashboard): pure, so the dashboard shares it.
export { formatBandwidth, parseBandwidth } from "../present/bandwidth";
