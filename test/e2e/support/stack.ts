// A whole Bootstream on loopback, from the real parts: a mirror written by `bootstream mirror`'s code to a
// temp dir and served over HTTP behind a ThrottleProxy, a `bootstream region` process pointed at it,
// and `bootstream rack` processes (each optionally behind its own throttled link to the region).
// The browser tests use it through `useStack` (support/dashboard.ts); scripts/dashboard-screenshot.ts
// uses it directly, so nothing here imports vitest.

import type { BootstreamClient } from "@bootstream/protocol/client";
import type { MirrorOptions } from "../../../apps/server/src/mirror/options";
import { ThrottleProxy } from "../../../apps/server/src/demo/throttle-proxy";
import { startMirror, type TestMirror } from "../../helpers/mirror";
import { startRack, type RackProcess } from "../../helpers/rack";
import { removeDir, startRegion, type RegionProcess } from "../../helpers/region";
import { waitFor, watch } from "../../helpers/watch";

export const MiB = 1024 * 1024;

export type StackRack = {
  name: string;
  /** Bytes a second on this rack's link to the region (Socket.IO and files); unlimited by default. */
  bytesPerSecond?: number;
};

export type StackOptions = {
  /** What the mirror publishes (startMirror's defaults: jammy and noble, amd64, 2 versions). */
  mirror?: MirrorOptions;
  /** Region environment on top of startRegion's (BOOT_SOURCE_URL is the mirror). */
  env?: Record<string, string>;
  racks?: (string | StackRack)[];
  /**
   * Wait until the region's first import (of the default selection: newest LTS, amd64) has finished,
   * at full speed, before the mirror is throttled to `bytesPerSecond`. Default true.
   */
  settle?: boolean;
  /** The mirror's speed, per connection, once settled (default unlimited; change it with `throttle`). */
  bytesPerSecond?: number;
};

export type Stack = {
  mirror: TestMirror;
  region: RegionProcess;
  racks: RackProcess[];
  /** Per connection from the mirror to the region; Infinity for full speed. */
  throttle(bytesPerSecond: number): void;
  /**
   * Throttles the mirror to `reading` now and to `payloads` once `client` sees the region read the
   * source again (its `lastFetch` changes): an import's index and product files, then its payloads.
   */
  throttleAfterSourceRead(client: BootstreamClient, reading: number, payloads: number): void;
  stop(): Promise<void>;
};

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const mirror = await startMirror({ versions: 1, ...options.mirror });
  const links: ThrottleProxy[] = [];
  const racks: RackProcess[] = [];
  let region: RegionProcess | null = null;
  const stop = async () => {
    await Promise.all(racks.map((rack) => rack.stop()));
    if (region) await region.stop();
    await Promise.all(links.map((link) => link.close()));
    await mirror.close();
    await Promise.all([mirror.dir, region?.dataDir, ...racks.map((r) => r.dataDir)].map(cleanup));
  };
  try {
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url, ...options.env } });
    const rackSpecs = (options.racks ?? []).map((r) => (typeof r === "string" ? { name: r } : r));
    for (const spec of rackSpecs) {
      let regionUrl = region.url;
      if (spec.bytesPerSecond !== undefined) {
        const link = await ThrottleProxy.start(`${region.url}/`, spec.bytesPerSecond);
        links.push(link);
        regionUrl = link.url.replace(/\/$/, "");
      }
      racks.push(await startRack({ regionUrl, name: spec.name }));
    }
    if (options.settle ?? true) {
      const client = await watch(region.url, region.adminToken);
      try {
        await waitFor(
          client,
          (s) =>
            s.import.finishedAt !== null &&
            !s.import.running &&
            [...s.images.values()].every((i) => i.state === (racks.length ? "rack-synced" : "synced")) &&
            s.racks.filter((r) => r.online).length === racks.length,
          30_000,
          "the first import",
        );
      } finally {
        client.close();
      }
    }
    mirror.proxy.bytesPerSecond = options.bytesPerSecond ?? Infinity;
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return {
    mirror,
    region: region!,
    racks,
    throttle: (bytesPerSecond) => void (mirror.proxy.bytesPerSecond = bytesPerSecond),
    throttleAfterSourceRead: (client, reading, payloads) => {
      const before = client.state.source.lastFetch;
      mirror.proxy.bytesPerSecond = reading;
      const unsubscribe = client.subscribe((_change, state) => {
        if (state.source.lastFetch === before) return;
        unsubscribe();
        mirror.proxy.bytesPerSecond = payloads;
      });
    },
    stop,
  };
}

async function cleanup(dir: string | undefined): Promise<void> {
  if (dir) await removeDir(dir);
}
