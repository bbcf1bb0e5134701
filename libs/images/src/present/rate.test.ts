import { describe, expect, it } from "vitest";
import { RateTracker } from "./rate";

describe("RateTracker", () => {
  it("needs half a second of samples, then gives bytes per second over the window", () => {
    const r = new RateTracker(5000, 15_000);
    r.sample("a", 0, 0);
    expect(r.rate("a", 0)).toBeNull();
    r.sample("a", 1_000_000, 250);
    expect(r.rate("a", 250)).toBeNull();
    for (let t = 500; t <= 10_000; t += 250) r.sample("a", t * 4000, t); // 4 MB/s
    expect(r.rate("a", 10_000)).toBeCloseTo(4_000_000, -3);
  });

  it("reports a stall, and starts over when bytes go backwards", () => {
    const r = new RateTracker(5000, 3000);
    r.sample("a", 0, 0);
    r.sample("a", 2_000_000, 1000);
    expect(r.rate("a", 1000)).toBe(2_000_000);
    r.sample("a", 2_000_000, 2000); // no progress
    expect(r.rate("a", 5000)).toBe(0);
    r.sample("a", 10, 6000); // restarted
    expect(r.rate("a", 6000)).toBeNull();
    r.forget("a");
    expect(r.rate("a", 6000)).toBeNull();
  });
});
