import { PerformanceObserver, constants } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { releaseAfterRun, youngGarbageBound } from "./memory";

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

describe("releaseAfterRun", () => {
  it("runs one collection for the runs that end within the delay, after it", async () => {
    let count = 0;
    releaseAfterRun(20, () => count++);
    releaseAfterRun(20, () => count++);
    expect(count).toBe(0);
    await expect.poll(() => count).toBe(1);
    releaseAfterRun(0, () => count++);
    await expect.poll(() => count).toBe(2);
  });

  it("runs a full collection of V8's by default: old garbage goes", async () => {
    // An object that survived two scavenges lives in the old generation: only a full collection
    // takes it, and none runs by itself in an idle test process (a no-op collector fails this).
    let collected = false;
    const registry = new FinalizationRegistry(() => (collected = true));
    const minor = youngGarbageBound(1);
    // Made and registered in a frame of its own: nothing here refers to it once that returns.
    (() => {
      const old = { payload: Array.from({ length: 1000 }, (_, i) => i) };
      registry.register(old, "old");
      minor(1);
      minor(1);
    })();
    releaseAfterRun(0);
    await expect.poll(() => collected, { timeout: 5000 }).toBe(true);
  });
});
