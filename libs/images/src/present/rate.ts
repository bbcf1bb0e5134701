// Download rate, computed by a client (dashboard, `status --watch`) from how bytesDone moves over time.

type Sample = { t: number; bytes: number };

export class RateTracker {
  readonly #samples = new Map<string, Sample[]>();

  /**
   * @param windowMs how far back the rate looks (smooths the 4-a-second progress events)
   * @param staleMs with no progress for this long, the download counts as stalled (rate 0)
   */
  constructor(
    readonly windowMs = 5000,
    readonly staleMs = 15_000,
  ) {}

  /** Records `bytes` done for `id` at time `t` (ms). A drop (a restart) starts over. */
  sample(id: string, bytes: number, t: number): void {
    let samples = this.#samples.get(id);
    const last = samples?.at(-1);
    if (!samples || (last && bytes < last.bytes)) {
      samples = [];
      this.#samples.set(id, samples);
    }
    if (last && bytes === last.bytes && samples.length > 0) return; // no progress: keep the older sample
    samples.push({ t, bytes });
    // Keep one sample older than the window so the rate spans the whole window.
    while (samples.length > 2 && samples[1]!.t <= t - this.windowMs) samples.shift();
  }

  /** Bytes per second, 0 when stalled, null until there is enough to tell. */
  rate(id: string, now: number): number | null {
    const samples = this.#samples.get(id);
    const first = samples?.[0];
    const last = samples?.at(-1);
    if (!first || !last) return null;
    if (now - last.t > this.staleMs) return 0;
    const dt = last.t - first.t;
    if (dt < 500) return null;
    return ((last.bytes - first.bytes) * 1000) / dt;
  }

  forget(id: string): void {
    this.#samples.delete(id);
  }
}
