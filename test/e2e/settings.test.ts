import { describe, expect, it } from "vitest";
import { requireChromium } from "../helpers/chromium";
import { otherClient, useDashboard, waitConnected } from "./support/dashboard";

// The settings area: the import window beside the hourly switch, and the region's download cap.

const run = requireChromium();

describe.skipIf(!run)("dashboard: import settings", () => {
  const dashboard = useDashboard();

  it("shows the window next to the hourly switch and the cap, and edits both", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    const schedule = page.locator("#schedule-text");
    await expect(schedule.textContent()).resolves.toBe("Hourly");
    await expect(page.locator("#bandwidth-value").textContent()).resolves.toBe("off");

    await page.getByText("Change the import window or the download cap").click();
    await page.getByLabel("Any time").uncheck();
    await page.getByLabel("From").fill("01:00");
    await page.getByLabel("to", { exact: true }).fill("05:00");
    await page.getByLabel("Time zone").fill("Europe/Paris");
    await page.getByRole("button", { name: "Save window" }).click();
    await schedule.filter({ hasText: "Hourly, 01:00–05:00 Europe/Paris" }).waitFor();
    // The save's own answer too (the settings event can come first), so nothing still moves.
    await page.getByRole("status").filter({ hasText: "Scheduled imports:" }).waitFor();
    // Off, the window is kept for later but is not a schedule that runs: both places say so.
    const hourly = page.getByRole("switch", { name: "Sync images hourly" });
    await hourly.setChecked(false, { force: true });
    await schedule.filter({ hasText: "Hourly sync off (window 01:00–05:00 Europe/Paris)" }).waitFor();
    await expect(page.locator("#import-settings-summary").textContent()).resolves.toContain(
      "Hourly sync off (window 01:00–05:00 Europe/Paris)",
    );
    await hourly.setChecked(true, { force: true });
    await schedule.filter({ hasText: "Hourly, 01:00–05:00 Europe/Paris" }).waitFor();

    await page.getByLabel(/Download cap/).fill("20MiB/s");
    await page.getByRole("button", { name: "Save cap" }).click();
    await page.locator("#bandwidth-value").filter({ hasText: "20 MiB/s" }).waitFor();

    const watcher = await otherClient(dashboard.region.url, dashboard.region.adminToken);
    try {
      expect(watcher.state.settings).toMatchObject({
        bandwidthLimit: 20 * 1024 ** 2,
        importWindow: { start: "01:00", end: "05:00", timezone: "Europe/Paris" },
      });
      // A change made elsewhere shows at once.
      await watcher.command("settings:update", { importWindow: null, bandwidthLimit: null });
      await schedule.filter({ hasText: /^Hourly$/ }).waitFor();
      await page.locator("#bandwidth-value").filter({ hasText: "off" }).waitFor();
    } finally {
      watcher.close();
    }
  });

  it("offers the current cap exactly: saving the form as it is keeps the cap", async () => {
    const watcher = await otherClient(dashboard.region.url, dashboard.region.adminToken);
    try {
      await watcher.command("settings:update", { bandwidthLimit: 512 * 1024 });
      const page = await dashboard.newPage();
      await dashboard.open(page, { hashToken: dashboard.region.adminToken });
      await waitConnected(page);
      await page.locator("#bandwidth-value").filter({ hasText: "512 KiB/s" }).waitFor();
      await page.getByText("Change the import window or the download cap").click();
      await expect(page.getByLabel(/Download cap/).inputValue()).resolves.toBe("512KiB/s");
      await page.getByRole("button", { name: "Save cap" }).click();
      // The page shows this once the region answered the save: what it holds now is final.
      await page.getByText(/^Download cap: .*\.$/).waitFor();
      const { snapshot } = await watcher.command("state:get", {});
      expect(snapshot.settings.bandwidthLimit).toBe(512 * 1024);
    } finally {
      await watcher.command("settings:update", { bandwidthLimit: null });
      watcher.close();
    }
  });

  it("says why a bad zone or cap is refused, and changes nothing", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    await page.getByText("Change the import window or the download cap").click();
    await page.getByLabel("Any time").uncheck();
    await page.getByLabel("Time zone").fill("Mars/Olympus");
    await page.getByRole("button", { name: "Save window" }).click();
    await page.getByRole("alert").filter({ hasText: "not an IANA time zone" }).waitFor();
    await page.getByLabel(/Download cap/).fill("fast");
    await page.getByRole("button", { name: "Save cap" }).click();
    await page.getByRole("alert").filter({ hasText: "say e.g. 20MiB/s" }).waitFor();
    // Out of range (bits: 4 kbit/s is 500 B/s): the CLI's words, not the schema's.
    await page.getByLabel(/Download cap/).fill("4kbps");
    await page.getByRole("button", { name: "Save cap" }).click();
    await page.getByRole("alert").filter({ hasText: "a cap is from 1000 B/s" }).waitFor();
    await expect(page.locator("#bandwidth-value").textContent()).resolves.toBe("off");
    await expect(page.locator("#schedule-text").textContent()).resolves.toBe("Hourly");
  });
});
