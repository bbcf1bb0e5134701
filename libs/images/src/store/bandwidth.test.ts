import { describe, expect, it } from "vitest";
import { BandwidthLimiter, formatBandwidth, parseBandwidth, type LimiterClock } from "./bandwidth";

/** Time passes only when someone sleeps. */
function fakeClock(): LimiterClock & { t: number } {
  const clock = {
    t: 0,
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.t += ms;
    },
  };
  return clock;
}

const MB = 1_000_000;

describe("BandwidthLimiter", () => {
  it.each([
    { limit: 2 * MB, batch: 64 * 1024, total: 20 * MB, seconds: 10 },
    { limit: 2 * MB, batch: 4 * 1024 * 1024, total: 20 * MB, seconds: 10 },
    { limit: 100 * MB, batch: 256 * 1024, total: 500 * MB, seconds: 5 },
    { limit: 1024, batch: 100, total: 1_024_000, seconds: 1000 },
  ])(
    "passes $total bytes in $batch-byte batches at $limit B/s in about $seconds s",
    async ({ limit, batch, total, seconds }) => {
      const clock = fakeClock();
      const limiter = new BandwidthLimiter(limit, clock);
      for (let sent = 0; sent < total; sent += batch) await limiter.take(Math.min(batch, total - sent));
      // The bucket starts with at most a burst, and the last batch may go out before its debt is paid.
      const burst = Math.max(64 * 1024, limit * 0.1);
      expect(clock.t).toBeGreaterThanOrEqual(((total - burst - batch) / limit) * 1000);
      expect(clock.t).toBeLessThanOrEqual(seconds * 1000 * 1.01);
    },
  );

  it("lets everything through at once without a limit", async () => {
    const clock = fakeClock();
    const limiter = new BandwidthLimiter(null, clock);
    for (let i = 0; i < 100; i++) await limiter.take(10 * MB);
    expect(clock.t).toBe(0);
  });

  it("holds the limit for the sum of concurrent takers", async () => {
    const clock = fakeClock();
    const limiter = new BandwidthLimiter(1 * MB, clock);
    const taker = async () => {
      for (let i = 0; i < 50; i++) await limiter.take(64 * 1024);
    };
    await Promise.all([taker(), taker(), taker(), taker()]);
    // 4 × 50 × 64 KiB = 13.1 MB at 1 MB/s.
    expect(clock.t).toBeGreaterThanOrEqual(12_000);
    expect(clock.t).toBeLessThanOrEqual(13_500);
  });

  it("ends a take waiting off its debt when its signal aborts, and refuses one already aborted", async () => {
    const clock = fakeClock();
    const controller = new AbortController();
    const sleep = clock.sleep;
    // The abort comes 2 s into a wait of 1,000 s (1 MB of debt at 1 kB/s).
    clock.sleep = async (ms) => {
      await sleep(ms);
      if (clock.t >= 2000) controller.abort(new Error("stopped"));
    };
    const limiter = new BandwidthLimiter(1000, clock);
    await limiter.take(1_000_000);
    await expect(limiter.take(1, controller.signal)).rejects.toThrow("stopped");
    expect(clock.t).toBeLessThan(3000);
    await expect(new BandwidthLimiter(null, clock).take(1, controller.signal)).rejects.toThrow("stopped");
  });

  it("applies a changed limit to a take already waiting", async () => {
    const clock = fakeClock();
    const limiter = new BandwidthLimiter(1000, clock);
    await limiter.take(1_000_000); // 1,000 s of debt at 1 kB/s
    const waiting = limiter.take(1);
    clock.t += 1000;
    limiter.setLimit(null);
    await waiting;
    expect(clock.t).toBeLessThan(3000);
    limiter.setLimit(10 * MB);
    const before = clock.t;
    await limiter.take(MB);
    await limiter.take(MB);
    expect(clock.t - before).toBeLessThanOrEqual(200);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY])("refuses a limit of %s", (value) => {
    expect(() => new BandwidthLimiter(value)).toThrow(RangeError);
  });
});

describe("parseBandwidth and formatBandwidth", () => {
  it.each([
    ["20MB/s", 20_000_000],
    ["20 mB/s", 20_000_000],
    ["100Mbit/s", 12_500_000],
    ["100Mb/s", 12_500_000],
    ["100 Mbps", 12_500_000],
    ["20MBps", 20_000_000],
    ["8kbit", 1000],
    ["OFF", null],
    ["1.5GB/s", 1_500_000_000],
    ["512KiB/s", 524_288],
    ["100MiB", 104_857_600],
    ["2000000", 2_000_000],
    ["64kbps", 8000],
    ["off", null],
    ["none", null],
  ])("reads %s as %s", (text, bytes) => {
    expect(parseBandwidth(text)).toBe(bytes);
  });

  it.each(["", "fast", "0", "0MB/s", "-5MB/s", "20 MB/h", "1e9", "20TB/s", "20M/s", "20Mi/s", "20MiBit/s2"])(
    "refuses %j",
    (text) => {
      expect(() => parseBandwidth(text)).toThrow(
        /say e\.g\. 20MiB\/s, 512KiB\/s, 20MB\/s \(MB = 10⁶ bytes\)/,
      );
    },
  );

  it.each([
    [null, "off"],
    [20 * 1024 ** 2, "20 MiB/s"],
    [20_000_000, "19.07 MiB/s"],
    [1.5 * 1024 ** 3, "1.5 GiB/s"],
    [524_288, "512 KiB/s"],
    [64_000, "62.5 KiB/s"],
    [1_048_575, "1 MiB/s"],
    [999, "999 B/s"],
    [1000, "1000 B/s"],
  ])("writes %s as %s", (bytes, text) => {
    expect(formatBandwidth(bytes)).toBe(text);
  });
});
