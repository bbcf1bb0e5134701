import { describe, expect, it } from "vitest";
import { runPool } from "./pool";

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("runPool", () => {
  it("never runs more than `concurrency` workers and keeps results in input order", async () => {
    let active = 0;
    let peak = 0;
    const items = Array.from({ length: 12 }, (_, i) => i);
    const results = await runPool(items, 3, async (n) => {
      active++;
      peak = Math.max(peak, active);
      await tick(n % 3 === 0 ? 6 : 2);
      active--;
      return n * 10;
    });
    expect(peak).toBe(3);
    expect(results).toEqual(items.map((n) => ({ status: "fulfilled", value: n * 10 })));
  });

  it("settles every item even when some fail", async () => {
    const results = await runPool([1, 2, 3], 2, async (n) => {
      if (n === 2) throw new Error("two");
      return n;
    });
    expect(results[0]).toEqual({ status: "fulfilled", value: 1 });
    expect(results[1]?.status).toBe("rejected");
    expect(results[2]).toEqual({ status: "fulfilled", value: 3 });
  });

  it("starts nothing new once aborted", async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const results = await runPool(
      [0, 1, 2, 3, 4],
      2,
      async (n) => {
        started.push(n);
        if (n === 1) controller.abort();
        await tick(1);
        return n;
      },
      controller.signal,
    );
    expect(started).toEqual([0, 1]);
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "rejected",
      "rejected",
      "rejected",
    ]);
  });

  it("rejects a nonsensical limit", async () => {
    await expect(runPool([1], 0, async (n) => n)).rejects.toThrow(RangeError);
  });
});
