import { describe, expect, it } from "vitest";
import { createLogger } from "../log";
import { InternalEvents } from "./internal-events";
import type { ImageRow } from "./db/entities";

const log = createLogger("silent", "test");

describe("InternalEvents", () => {
  it("runs an ordered handler one call at a time, in emit order", async () => {
    const events = new InternalEvents(log);
    const seen: string[] = [];
    let running = 0;
    let overlapped = false;
    events.on(
      "image.committed",
      async ({ changed }) => {
        running++;
        if (running > 1) overlapped = true;
        seen.push(`start ${changed[0]}`);
        // The first call takes longer than the second: an unordered handler would finish out of order.
        await new Promise((resolve) => setImmediate(resolve));
        if (changed[0] === "a") await new Promise((resolve) => setImmediate(resolve));
        seen.push(`end ${changed[0]}`);
        running--;
      },
      { ordered: true },
    );
    events.emit("image.committed", { changed: ["a"], removed: [] });
    events.emit("image.committed", { changed: ["b"], removed: [] });
    await events.settle();
    expect(seen).toEqual(["start a", "end a", "start b", "end b"]);
    expect(overlapped).toBe(false);
  });

  it("keeps a failing handler from the emitter and from the other handlers", async () => {
    const events = new InternalEvents(log);
    const calls: string[] = [];
    events.on("racks.caughtUp", () => {
      throw new Error("boom");
    });
    events.on("racks.caughtUp", () => void calls.push("second"));
    expect(() => events.emit("racks.caughtUp", {})).not.toThrow();
    await events.settle();
    expect(calls).toEqual(["second"]);
  });

  it("answers a query with its default until a part answers it, and unsubscribes", async () => {
    const events = new InternalEvents(log);
    const image = { id: "ubuntu/noble/amd64" } as ImageRow;
    expect(events.ask("racks.counts", image)).toEqual({
      synced: 0,
      total: 0,
      syncing: 0,
      offline: 0,
      failed: 0,
      error: null,
    });
    expect([...(await events.ask("racks.pinned"))]).toEqual([]);
    events.answer("racks.counts", (row) => ({
      synced: row.id.length,
      total: 1,
      syncing: 0,
      offline: 0,
      failed: 0,
      error: null,
    }));
    expect(events.ask("racks.counts", image).synced).toBe(image.id.length);

    const calls: number[] = [];
    const off = events.on("import.finished", () => void calls.push(1));
    events.emit("import.finished", { error: null });
    off();
    events.emit("import.finished", { error: null });
    await events.settle();
    expect(calls).toEqual([1]);
  });
});
