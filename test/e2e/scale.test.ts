import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { requireChromium } from "../helpers/chromium";
import { waitFor, watch } from "../helpers/watch";
import { useStack, waitConnected } from "./support/dashboard";

// 500 images and a steady stream of progress events: the page must stay responsive. The load is real:
// a mirror with 2 releases × 250 architectures (tiny payloads) behind a throttle, all 500 images
// selected, and the region importing them 8 files at a time, each file taking about half a second.

const run = requireChromium();

const ARCHES = Array.from({ length: 250 }, (_, i) => `arch${String(i).padStart(3, "0")}`);
const RELEASES = ["jammy", "noble"];
const KiB = 1024;

describe.skipIf(!run)("dashboard at scale", () => {
  const dashboard = useStack({
    mirror: {
      releases: RELEASES,
      arches: ARCHES,
      kernels: ["ga"],
      centos: [],
      sizes: { squashfs: 16 * KiB, initrd: 8 * KiB, kernel: 4 * KiB },
    },
    env: { DOWNLOAD_CONCURRENCY: "8" },
  });
  let watcher: BootstreamClient;
  let events = 0;

  beforeAll(async () => {
    watcher = await watch(dashboard.region.url, dashboard.region.adminToken);
    watcher.socket!.on("image", () => events++);
    // Every image, by the typed client: the protocol takes at most 32 arches an item, and merges items.
    const items = RELEASES.flatMap((release) =>
      Array.from({ length: Math.ceil(ARCHES.length / 32) }, (_, i) => ({
        os: "ubuntu",
        release,
        arches: ARCHES.slice(i * 32, i * 32 + 32),
      })),
    );
    // The import reads the index and its 500 products at full speed; then the payloads crawl.
    dashboard.stack.throttleAfterSourceRead(watcher, Infinity, 32 * KiB);
    await watcher.command("selection:save", { revision: watcher.state.selection.revision, items });
    await waitFor(
      watcher,
      (s) => s.images.size === 500 && [...s.images.values()].some((i) => i.state === "downloading"),
      20_000,
      "500 images, downloading",
    );
  });

  afterAll(async () => {
    await watcher?.command("import:stop", {}).catch(() => undefined);
    watcher?.close();
  });

  it("renders 500 images, follows a steady stream of updates, and stays usable", async () => {
    const page = await dashboard.newPage({ width: 1600, height: 1000 });
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    await expect.poll(() => page.locator("table.images tbody tr").count()).toBe(500);
    await expect(page.getByTestId("summary").textContent()).resolves.toMatch(/^500 images · /);

    // Live updates reach the rendered table (how fast it renders is bench/dashboard-scale.ts's figure).
    const before = events;
    const textBefore = await page.locator("table.images tbody").textContent();
    await expect.poll(() => events - before, { timeout: 30_000 }).toBeGreaterThanOrEqual(20);
    await expect
      .poll(() => page.locator("table.images tbody").textContent(), { timeout: 30_000 })
      .not.toBe(textBefore);

    // The rows show the live progress, with the same numbers as the region.
    const downloading = page.locator('tr[data-state="downloading"] td.status');
    await expect(downloading.first().textContent()).resolves.toMatch(/Downloading \d+%/);
    await expect(page.title()).resolves.toMatch(/^\(\d+%\) Images · Bootstream$/);

    // A control still answers while the updates pour in.
    const box = page.getByRole("group", { name: "Architectures" }).getByRole("checkbox", { name: "arch249" });
    await box.uncheck();
    const save = page.getByRole("button", { name: "Save selection" });
    await expect.poll(() => save.isEnabled()).toBe(true);
    // And saving it works: two images leave the table.
    await save.click();
    await page.getByText(/Selection saved \(revision \d+\)/).waitFor();
    await expect.poll(() => page.locator("table.images tbody tr").count()).toBe(498);
    expect(watcher.state.images.has("ubuntu/noble/arch249")).toBe(false);
  });
});
