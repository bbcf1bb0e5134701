import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { serveDirectory } from "../../apps/server/src/mirror/serve";
import { requireChromium } from "../helpers/chromium";
import { waitFor, watch } from "../helpers/watch";
import { useStack, waitConnected } from "./support/dashboard";
import { MiB } from "./support/stack";

// An import watched in the browser, end to end: a real region importing from a real mirror over
// HTTP (throttled, so "Downloading 42%" lasts long enough to see) and two real rack agents, rack-2
// on a slow link to the region so "Syncing to rack controller(s)" lasts long enough to see too.

const run = requireChromium();

const JAMMY = "ubuntu/jammy/amd64";
const PLUCKY = "ubuntu/plucky/amd64";
const NOBLE = "ubuntu/noble/amd64";

/** Records, in the page, every status text one row shows and every tab title, in order. */
async function recordRow(page: Page, id: string): Promise<void> {
  await page.evaluate((id) => {
    const w = window as unknown as { statuses: string[]; titles: string[] };
    w.statuses = [];
    w.titles = [document.title];
    const record = () => {
      const text = document.querySelector(`tr[data-id="${id}"] td.status .text`)?.textContent?.trim();
      if (text && w.statuses.at(-1) !== text) w.statuses.push(text);
      if (w.titles.at(-1) !== document.title) w.titles.push(document.title);
    };
    new MutationObserver(record).observe(document.documentElement, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  }, id);
}

const recorded = (page: Page) =>
  page.evaluate(() => {
    const w = window as unknown as { statuses: string[]; titles: string[] };
    return { statuses: w.statuses, titles: w.titles };
  });

const row = (page: Page, id: string) => page.locator(`tr[data-id="${id}"]`);
const statusOf = (page: Page, id: string) => row(page, id).locator("td.status .text");

function releaseBox(page: Page, title: RegExp) {
  return page.getByRole("group", { name: "Releases" }).getByRole("checkbox", { name: title });
}

describe.skipIf(!run)("dashboard: an import, live", () => {
  const dashboard = useStack({
    mirror: {
      releases: ["jammy", "noble", "plucky"],
      arches: ["amd64"],
      kernels: ["ga"],
      centos: [],
      sizes: { squashfs: 4 * MiB },
    },
    racks: ["rack-1", { name: "rack-2", bytesPerSecond: 4 * MiB }],
  });
  let admin: BootstreamClient;

  beforeAll(async () => {
    admin = await watch(dashboard.region.url, dashboard.region.adminToken);
  });
  afterAll(() => admin?.close());

  it("select a release, save: Queued → Downloading N% → on the racks → Synced, 2/2", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    // The default image is already everywhere.
    await expect(statusOf(page, NOBLE).textContent()).resolves.toBe("Synced");
    await expect(row(page, NOBLE).locator("td.racks").textContent()).resolves.toBe("2/2");
    await expect(page.title()).resolves.toBe("Images · Bootstream");

    await recordRow(page, JAMMY);
    // The import reads the index slowly (so "Queued for download" is on screen for a while, whatever
    // the machine's speed), then the payloads come at 2 MiB/s a connection: the 4 MiB squashfs takes
    // two seconds.
    dashboard.stack.throttleAfterSourceRead(admin, 16 * 1024, 2 * MiB);
    await releaseBox(page, /22\.04/).check();
    await page.getByRole("button", { name: "Save selection" }).click();
    await page.getByText(/Selection saved \(revision \d+\)/).waitFor();

    // Queued at once, while the region reads the source.
    const status = statusOf(page, JAMMY);
    await status.filter({ hasText: /^Queued for download$/ }).waitFor();
    await expect(row(page, JAMMY).locator("td.racks").textContent()).resolves.toBe("0/2");

    // Downloading: the percentage, a progress bar that agrees with it, and the rate.
    await status.filter({ hasText: /^Downloading \d+%$/ }).waitFor();
    const bar = row(page, JAMMY).getByRole("progressbar");
    await expect(bar.isVisible()).resolves.toBe(true);
    const pct = Number(/(\d+)%/.exec((await status.textContent()) ?? "")![1]);
    expect(Number(await bar.getAttribute("aria-valuenow"))).toBeGreaterThanOrEqual(pct);
    expect(Number(await bar.getAttribute("aria-valuenow"))).toBeLessThan(100);
    await expect(page.getByTestId("summary").textContent()).resolves.toMatch(
      /^2 images · 1 synced · 1 downloading \d+%$/,
    );
    // The tab title carries the import's progress while it downloads.
    await expect(page.title()).resolves.toMatch(/^\(\d{1,2}%\) Images · Bootstream$/);
    await row(page, JAMMY)
      .locator(".rate")
      .filter({ hasText: /\d (KiB|MiB)\/s$/ })
      .waitFor();

    // Synced in the region and on both racks.
    await status.filter({ hasText: /^Synced$/ }).waitFor({ timeout: 30_000 });
    await expect(row(page, JAMMY).locator("td.racks").textContent()).resolves.toBe("2/2");
    await expect(row(page, JAMMY).getByRole("progressbar").count()).resolves.toBe(0);
    await expect(row(page, JAMMY).locator("time").count()).resolves.toBe(1);
    await expect(page.getByTestId("summary").textContent()).resolves.toBe("2 images · 2 synced");
    await expect.poll(() => page.title()).toBe("Images · Bootstream");
    const racks = page.locator("ul.racks li");
    await expect
      .poll(() => racks.allTextContents())
      .toEqual([
        expect.stringMatching(/rack-1\s*Online\s*2\/2 images synced/),
        expect.stringMatching(/rack-2\s*Online\s*2\/2 images synced/),
      ]);

    // Every step was on screen, in order.
    const { statuses, titles } = await recorded(page);
    expect(statuses[0]).toBe("Queued for download");
    expect(statuses.at(-1)).toBe("Synced");
    const downloading = statuses.filter((s) => s.startsWith("Downloading"));
    const percents = downloading.map((s) => Number(/(\d+)%/.exec(s)![1]));
    expect(percents.length).toBeGreaterThanOrEqual(3);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    const racksStep = statuses.findIndex((s) =>
      ["Waiting for rack controller(s) to sync", "Syncing to rack controller(s)"].includes(s),
    );
    expect(racksStep, statuses.join(" → ")).toBeGreaterThan(statuses.indexOf(downloading.at(-1)!));
    expect(statuses.slice(1, statuses.indexOf(downloading[0]!))).toEqual([]);
    const titlePercents = titles.flatMap((t) => /^\((\d+)%\)/.exec(t)?.[1] ?? []).map(Number);
    expect(titlePercents.length).toBeGreaterThanOrEqual(2);
    expect(titles.at(-1)).toBe("Images · Bootstream");
  });

  it("Stop import puts the image back in the queue; Import now resumes it", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    dashboard.stack.throttle(256 * 1024);
    await releaseBox(page, /25\.04/).check();
    await page.getByRole("button", { name: "Save selection" }).click();
    await statusOf(page, PLUCKY)
      .filter({ hasText: /^Downloading \d+%$/ })
      .waitFor();
    await expect(page.getByText(/^Importing \(after a selection change\) since /).isVisible()).resolves.toBe(
      true,
    );

    const stop = page.getByRole("button", { name: "Stop import" });
    await stop.click();
    await statusOf(page, PLUCKY)
      .filter({ hasText: /^Queued for download$/ })
      .waitFor();
    await stop.waitFor({ state: "detached" });
    await expect(
      page.getByText("Last import stopped by admin at", { exact: false }).isVisible(),
    ).resolves.toBe(true);
    await expect(page.getByTestId("summary").textContent()).resolves.toBe("3 images · 2 synced · 1 queued");
    // The region agrees: not running, the image queued with what it had.
    const state = await waitFor(admin, (s) => !s.import.running, 5_000, "import stopped");
    expect(state.import.error).toBe("stopped by admin");
    expect(state.images.get(PLUCKY)?.state).toBe("queued");
    // It stays stopped.
    await page.waitForTimeout(500);
    expect(admin.state.import.running).toBe(false);
    await expect(stop.count()).resolves.toBe(0);

    dashboard.stack.throttle(Infinity);
    await page.getByRole("button", { name: "Import now" }).click();
    await statusOf(page, PLUCKY)
      .filter({ hasText: /^Synced$/ })
      .waitFor({ timeout: 30_000 });
    expect(admin.state.import.trigger).toBe("manual");
  });

  it("a boot source that cannot be read shows its error inline, and the old source stays", async () => {
    const empty = await mkdtemp(path.join(tmpdir(), "bootstream-empty-"));
    const served = await serveDirectory(empty);
    try {
      const page = await dashboard.newPage();
      await dashboard.open(page, { hashToken: dashboard.region.adminToken });
      await waitConnected(page);
      const oldUrl = admin.state.source.url;
      const showing = page.getByText("Showing images synced from");
      await expect(showing.textContent()).resolves.toContain(oldUrl);

      await page.getByText("Change the boot source").click();
      const url = page.getByLabel("Simplestreams URL");
      // Opening the form starts from the current URL.
      await expect.poll(() => url.inputValue()).toBe(oldUrl);
      const bad = `${served.url}ephemeral-v3/stable/`;
      await url.fill(bad);
      await page.getByRole("button", { name: "Change source" }).click();

      const error = page.getByRole("alert").filter({ hasText: /^Not changed: / });
      await error.waitFor();
      await expect(error.textContent()).resolves.toContain(`${bad}streams/v1/index.json: HTTP 404`);
      // The old source is still the one shown (and the region's), the form keeps what was typed to fix it.
      await expect(showing.textContent()).resolves.toContain(oldUrl);
      await expect(showing.textContent()).resolves.not.toContain(served.url);
      await expect(url.inputValue()).resolves.toBe(bad);
      expect(admin.state.source).toMatchObject({ url: oldUrl, error: null });
      // Still importing from the old source: the images are all there and synced.
      await expect(page.getByTestId("summary").textContent()).resolves.toBe("3 images · 3 synced");
    } finally {
      await served.close();
      await rm(empty, { recursive: true, force: true });
    }
  });
});
