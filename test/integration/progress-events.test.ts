import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ImageState } from "@bootstream/protocol";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { connect, send, type TestSocket } from "../helpers/sockets";

// The contract: at most 4 `image` events a second per image, for the first import's progress and for
// an update's (`next`) alike. A throttled mirror makes each download last a while and arrive in many
// small chunks (each one a progress step in the importer), so a missing coalescing shows as tens of
// events where the bound allows a handful. The bound is counted against the time the test itself
// saw pass, which a loaded machine only makes longer.

const NOBLE = "ubuntu/noble/amd64";
const MiB = 1024 * 1024;

type Seen = { image: ImageState; at: number };

describe("progress events", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let socket: TestSocket;
  const seen: Seen[] = [];

  /** Resolves with the first event (from `from` on) whose image fits, bounded. */
  function until(from: number, fits: (image: ImageState) => boolean, what: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 120_000);
      const check = () => {
        const index = seen.findIndex((s, i) => i >= from && fits(s.image));
        if (index === -1) return;
        clearTimeout(timer);
        socket.off("image", check);
        resolve(index);
      };
      socket.on("image", check);
      check();
    });
  }

  /** The events of one run (from `from` to `to`) and the bound the contract gives them. */
  function within(from: number, to: number, startedAt: number, pick: (image: ImageState) => boolean) {
    const events = seen.slice(from, to + 1).filter((s) => s.image.id === NOBLE && pick(s.image));
    const seconds = (seen[to]!.at - startedAt) / 1000;
    return { count: events.length, bound: Math.ceil(seconds * 4) + 2, events };
  }

  beforeAll(async () => {
    // Files of 2 MiB at 2 MiB/s: seconds a version, in chunks of 100 KiB (the throttle's slices).
    mirror = await startMirror(
      { releases: ["noble"], arches: ["amd64"], versions: 1, payloadSize: 2 * MiB },
      2 * MiB,
    );
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
    ({ socket } = await connect(region.url, region.adminToken));
    socket.on("image", ({ image }) => seen.push({ image, at: Date.now() }));
  }, 60_000);

  afterAll(async () => {
    socket?.close();
    await region?.stop();
    await mirror?.close();
    if (region) await removeDir(region.dataDir);
  });

  it("coalesces the first import's progress and an update's alike", async () => {
    // The first start imports the default image (noble amd64) at once.
    const firstFrom = 0;
    const firstStarted = Date.now();
    const firstDone = await until(
      firstFrom,
      (i) => i.id === NOBLE && i.state === "synced",
      "the first import",
    );
    const first = within(firstFrom, firstDone, firstStarted, (i) => i.state === "downloading");
    expect(first.events.some((s) => s.image.bytesDone > 0 && s.image.bytesDone < s.image.bytesTotal)).toBe(
      true,
    );
    expect(first.count).toBeLessThanOrEqual(first.bound);

    await mirror.addVersion();
    const nextFrom = seen.length;
    const nextStarted = Date.now();
    const ack = await send(socket, "import:start", {});
    expect(ack.ok).toBe(true);
    const nextDone = await until(
      nextFrom,
      (i) => i.id === NOBLE && i.next === null && i.version !== seen[firstDone]!.image.version,
      "the update to the new version",
    );
    const update = within(nextFrom, nextDone, nextStarted, (i) => i.next?.state === "downloading");
    // The row stays served while the update downloads, and shows its progress.
    expect(update.events.every((s) => s.image.state === "synced" || s.image.state === "rack-synced")).toBe(
      true,
    );
    expect(
      update.events.some(
        (s) => s.image.next!.bytesDone > 0 && s.image.next!.bytesDone < s.image.next!.bytesTotal,
      ),
    ).toBe(true);
    expect(update.count).toBeLessThanOrEqual(update.bound);
  }, 180_000);
});
