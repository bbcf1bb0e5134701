import { PerformanceObserver, constants } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { youngGarbageBound } from "./young-garbage";

describe("youngGarbageBound", () => {
  it.each([
    { deltas: [3, 3], collections: 0 },
    { deltas: [3, 3, 4], collections: 1 },
    { deltas: [10], collections: 1 },
    { deltas: [10, 10, 10], collections: 3 },
    { deltas: [6, -6, 6], collections: 1 }, // a restart's negative delta takes nothing back
    { deltas: [0, -5, 9, 0], collections: 0 },
  ])("collects once per 10 bytes received: $deltas → $collections", ({ deltas, collections }) => {
    let count = 0;
    const received = youngGarbageBound(10, () => count++);
    for (const delta of deltas) received(delta);
    expect(count).toBe(collections);
  });

  it("does nothing without a collector", () => {
    const received = youngGarbageBound(1, null);
    expect(() => received(100)).not.toThrow();
  });

  it("runs a real minor collection of V8's by default, at the call", async () => {
    // The entry's start lies between the two clock readings around the call: the collection is
    // the call's, not one V8 ran by itself (a no-op collector leaves this waiting until it fails).
    let window: { from: number; to: number } | null = null;
    const seen: PerformanceEntry[] = [];
    const ours = () =>
      seen.some(
        (entry) =>
          window !== null &&
          (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ===
            constants.NODE_PERFORMANCE_GC_MINOR &&
          entry.startTime >= window.from &&
          entry.startTime <= window.to,
      );
    const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
    observer.observe({ entryTypes: ["gc"] });
    try {
      const received = youngGarbageBound(1);
      const from = performance.now();
      received(1);
      window = { from, to: performance.now() };
      await expect.poll(ours).toBe(true);
    } finally {
      observer.disconnect();
    }
  });
});
