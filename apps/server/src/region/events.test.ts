import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { imageState, newImageRecord } from "@bootstream/images";
import { EventBus } from "./events";

const image = (bytesDone: number) =>
  imageState(
    {
      ...newImageRecord(
        "ubuntu/noble/amd64",
        { os: "ubuntu", release: "noble", arch: "amd64", title: "24.04 LTS" },
        "2026-12-02T00:00:00.000Z",
      ),
      state: "downloading",
      bytesTotal: 1000,
      bytesDone,
    },
    { synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null },
  );

describe("EventBus.gate (the event fence)", () => {
  // The coalescing timer on a fake clock: the held-back event falls due when the test says so.
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("sends nothing while closed, a coalesced event that falls due after it closed included", () => {
    const bus = new EventBus();
    let open = true;
    bus.gate(() => open);
    const sent: { event: string; seq: number }[] = [];
    bus.subscribe((event, payload) => sent.push({ event, seq: payload.seq }));

    bus.imageProgress(image(100));
    // Within the coalescing interval: held back, to go out when due.
    bus.imageProgress(image(200));
    expect(sent).toEqual([{ event: "image", seq: 1 }]);
    open = false;
    bus.emit("rack:removed", { name: "rack-a" });
    bus.imageProgress(image(300));
    vi.advanceTimersByTime(10_000);
    expect(sent).toEqual([{ event: "image", seq: 1 }]);
    expect(bus.currentSeq).toBe(1);
    expect(bus.live.images.get("ubuntu/noble/amd64")?.bytesDone).toBe(100);

    // Open again (this node leads again): events go out, numbered on.
    open = true;
    bus.emit("rack:removed", { name: "rack-a" });
    expect(sent.at(-1)).toEqual({ event: "rack:removed", seq: 2 });
    bus.close();
  });
});
