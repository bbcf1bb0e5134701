import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { requireChromium } from "../helpers/chromium";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";
import { useStack, waitConnected } from "./support/dashboard";
import { MiB } from "./support/stack";

// The days after the first import, in the browser: per-release arches, a newer upstream version
// offered with auto-import off and imported with one click (watched with its bar and rate while the
// row stays served), then a source that drops a release (a warning) and a rack that goes away.
// Real region, real mirrors over HTTP, two real rack agents.

const run = requireChromium();

const NOBLE = "ubuntu/noble/amd64";
const NOBLE_ARM = "ubuntu/noble/arm64";
const JAMMY = "ubuntu/jammy/amd64";

const row = (page: Page, id: string) => page.locator(`tr[data-id="${id}"]`);
const statusOf = (page: Page, id: string) => row(page, id).locator("td.status .text");
const keysOf = (items: { os: string; release: string; arches: string[] }[]) =>
  items.flatMap((i) => i.arches.map((a) => `${i.os}/${i.release}/${a}`)).sort();

describe.skipIf(!run)("dashboard: updates and trouble at a glance", () => {
  const dashboard = useStack({
    mirror: {
      releases: ["jammy", "noble"],
      arches: ["amd64", "arm64"],
      kernels: ["ga"],
      centos: [],
      sizes: { squashfs: 6 * MiB },
    },
    // Every 2 s the region looks at the source: with auto-import off it only marks what is new.
    env: { IMPORT_SCHEDULE: "*/2 * * * * *" },
    racks: ["rack-1", "rack-2"],
  });
  let admin: BootstreamClient;
  let page: Page;
  let nobleOnly: TestMirror | null = null;

  beforeAll(async () => {
    admin = await watch(dashboard.region.url, dashboard.region.adminToken);
    await admin.command("settings:update", { autoImport: false });
    page = await dashboard.newPage({ width: 1500, height: 1000 });
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
  });
  afterAll(async () => {
    admin?.close();
    await nobleOnly?.close();
  });

  it("edits arches per release (noble amd64+arm64, jammy amd64), with no indeterminate box", async () => {
    const releases = page.getByRole("group", { name: "Releases" });
    await releases.getByRole("checkbox", { name: /22\.04/ }).check();
    // Both releases get the arches in use (amd64); noble's own boxes open from its arch list.
    await page.locator(".release-arches button").filter({ hasText: "amd64" }).first().waitFor();
    await page
      .locator('.release-arches[data-release="noble"]')
      .getByRole("button", { name: "amd64" })
      .click();
    await page
      .getByRole("group", { name: "24.04 architectures" })
      .getByRole("checkbox", { name: "arm64" })
      .check();
    // Releases differ now: each has its own boxes, and the shared arm64 box says where it is on.
    await page.getByRole("group", { name: "22.04 architectures" }).waitFor();
    const shared = page.getByRole("group", { name: "Architectures", exact: true });
    await expect(shared.getByRole("checkbox", { name: "arm64" }).isChecked()).resolves.toBe(false);
    await shared.getByText("noble only").waitFor();
    const indeterminate = await page.evaluate(
      () =>
        [...document.querySelectorAll("input[type=checkbox]")].filter(
          (b) => (b as HTMLInputElement).indeterminate,
        ).length,
    );
    expect(indeterminate).toBe(0);
    // jammy's last arch stays: the release box deselects a release, not its arch boxes.
    const jammyAmd = page
      .getByRole("group", { name: "22.04 architectures" })
      .getByRole("checkbox", { name: "amd64" });
    await jammyAmd.uncheck({ force: true }).catch(() => undefined);
    await expect(jammyAmd.isChecked()).resolves.toBe(true);
    await page.getByText(/needs an architecture: deselect the release instead/).waitFor();

    await page.getByText("Unsaved: added Ubuntu 22.04 LTS amd64, Ubuntu 24.04 LTS arm64.").waitFor();
    await page.getByRole("button", { name: "Save selection" }).click();
    await page.getByText(/Selection saved \(revision \d+\)/).waitFor();
    expect(keysOf(admin.state.selection.items)).toEqual([JAMMY, NOBLE, NOBLE_ARM]);
    await waitFor(
      admin,
      (s) =>
        !s.import.running &&
        [JAMMY, NOBLE, NOBLE_ARM].every((id) => s.images.get(id)?.state === "rack-synced"),
      60_000,
      "the three images on both racks",
    );
    // The version column shows what each row serves.
    await expect(row(page, JAMMY).locator("td.version").textContent()).resolves.toBe(
      admin.state.images.get(JAMMY)!.version,
    );
  });

  it("shows an update available with auto-import off, imports it with one click, and shows its bar and rate while the row stays served", async () => {
    const before = admin.state.images.get(NOBLE)!.version!;
    // "Last synced" is when the served version synced, in the row's words ("just now", "3 min ago").
    const syncedAt = admin.state.images.get(NOBLE)!.syncedAt!;
    expect(syncedAt).not.toBeNull();
    const lastSynced = row(page, NOBLE).locator("td.synced-at time");
    await expect(lastSynced.getAttribute("datetime")).resolves.toBe(syncedAt);
    await expect(lastSynced.textContent()).resolves.toMatch(/^(just now|\d+ min ago)$/);
    await dashboard.stack.mirror.addVersion();
    const { images } = await waitFor(
      admin,
      (s) => s.images.get(NOBLE)?.next?.state === "available",
      20_000,
      "the schedule marks the new version available",
    );
    const next = images.get(NOBLE)!.next!.version;
    expect(next > before).toBe(true);
    await statusOf(page, NOBLE)
      .filter({ hasText: `Synced · update available: ${next}` })
      .waitFor();
    await expect(page.getByTestId("summary").textContent()).resolves.toContain("3 updates available");
    await expect(row(page, NOBLE).locator("td.version").textContent()).resolves.toBe(before);

    // Slow enough to watch: 6 MiB squashfs at 1 MiB/s a connection.
    dashboard.stack.throttle(1 * MiB);
    await row(page, NOBLE)
      .getByRole("button", { name: `Import ${next}` })
      .click();
    const bar = row(page, NOBLE).getByRole("progressbar", { name: `${NOBLE} update to ${next}` });
    await bar.waitFor();
    await expect
      .poll(() => bar.getAttribute("aria-valuenow").then(Number), { timeout: 20_000 })
      .toBeGreaterThan(0);
    await expect(statusOf(page, NOBLE).textContent()).resolves.toMatch(
      new RegExp(`^Synced · updating to ${next} \\d+%$`),
    );
    await row(page, NOBLE).locator(".rate").filter({ hasText: /\/s$/ }).waitFor({ timeout: 10_000 });
    // Still served the whole time: the row's state is the held version's.
    await expect(row(page, NOBLE).getAttribute("data-state")).resolves.toBe("rack-synced");
    await expect(row(page, NOBLE).locator("td.version").textContent()).resolves.toBe(before);
    // ...and its "Last synced" stays the served version's, though updatedAt moved with the update.
    expect(admin.state.images.get(NOBLE)!.updatedAt).not.toBe(syncedAt);
    await expect(lastSynced.getAttribute("datetime")).resolves.toBe(syncedAt);
    await expect(page.getByTestId("summary").textContent()).resolves.toMatch(/\d+ updating/);

    dashboard.stack.throttle(Infinity);
    await row(page, NOBLE).locator("td.version").filter({ hasText: next }).waitFor({ timeout: 30_000 });
    await waitFor(
      admin,
      (s) => !s.import.running && [...s.images.values()].every((i) => i.next === null),
      30_000,
      "updated",
    );
    await expect(row(page, NOBLE).locator(".progress").count()).resolves.toBe(0);
    // The new version synced: "Last synced" moved forward with it.
    const newSyncedAt = admin.state.images.get(NOBLE)!.syncedAt!;
    expect(Date.parse(newSyncedAt)).toBeGreaterThan(Date.parse(syncedAt));
    await row(page, NOBLE).locator(`td.synced-at time[datetime="${newSyncedAt}"]`).waitFor();
    await expect(lastSynced.textContent()).resolves.toBe("just now");
  });

  it("shows a warning and an offline rack on the row and in the header", async () => {
    nobleOnly = await startMirror({
      releases: ["noble"],
      arches: ["amd64", "arm64"],
      kernels: ["ga"],
      centos: [],
      versions: 1,
    });
    await admin.command("source:update", { url: nobleOnly.url });
    await waitFor(admin, (s) => s.images.get(JAMMY)?.warning != null, 20_000, "jammy's warning");
    const warning = row(page, JAMMY).locator("td.status .warning");
    await warning.filter({ hasText: `not offered by ${nobleOnly.url}` }).waitFor();
    // Served still: the row says Synced, the warning says what is wrong.
    // (The source change republishes the manifest, so the racks may be a moment in "Syncing to rack
    // controller(s)" first: wait for the row to settle rather than read it once.)
    await expect.poll(() => statusOf(page, JAMMY).textContent()).toMatch(/^Synced/);
    await page.getByTestId("trouble").filter({ hasText: "1 warning" }).waitFor();

    await dashboard.stack.racks[1]!.stop();
    await page.getByTestId("trouble").filter({ hasText: "1 warning · 1 of 2 racks offline" }).waitFor();
    // The header counts the rack list; the row counts the image's own summary, which the region
    // sends in the image update that follows: wait for it rather than read it once.
    const racksCell = row(page, NOBLE).locator("td.racks");
    await expect.poll(() => racksCell.textContent()).toBe("1/2 · 1 offline");
    await expect.poll(() => racksCell.getAttribute("class")).toContain("offline");
    const rack = page.locator('.racks li[data-rack="rack-2"]');
    await expect.poll(() => rack.getAttribute("class")).toContain("offline");
    await expect.poll(() => rack.locator(".conn").textContent()).toBe("Offline");
    await page.getByTestId("racks-offline").filter({ hasText: "1 of 2 offline" }).waitFor();
  });

  it("bounds the Activity feed to a page and shows more on request", async () => {
    // Enough changes for two pages.
    for (let i = 0; i < 24; i++) await admin.command("settings:update", { autoImport: i % 2 === 0 });
    await admin.command("settings:update", { autoImport: false });
    const feed = page.getByTestId("activity").locator("li");
    await expect.poll(() => feed.count()).toBe(20);
    await page.getByRole("button", { name: "Show more" }).click();
    await expect.poll(() => feed.count()).toBeGreaterThan(20);
    await page.getByRole("button", { name: "Show fewer" }).click();
    await expect.poll(() => feed.count()).toBe(20);
  });
});
