import { describe, expect, it } from "vitest";
import { requireChromium } from "../helpers/chromium";
import { otherClient, useDashboard, waitConnected } from "./support/dashboard";

// The store area: an admin starts a verification and sees its outcome; a viewer only sees it.

const run = requireChromium();

describe.skipIf(!run)("dashboard: store verification", () => {
  const dashboard = useDashboard();

  it("verifies the store from the Store panel and shows the outcome", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    const summary = page.locator("#verify-summary");
    await expect(summary.textContent()).resolves.toMatch(/never verified/);
    await page.getByRole("button", { name: "Verify store" }).click();
    await summary.filter({ hasText: /verified \d{4}-\d\d-\d\d \d\d:\d\d: clean/ }).waitFor();

    const watcher = await otherClient(dashboard.region.url, dashboard.region.adminToken);
    try {
      expect(watcher.state.verify).toMatchObject({ running: false, corrupt: [], error: null });
      const { entries } = await watcher.command("audit:list", {});
      expect(entries[0]).toMatchObject({ action: "store:verify", by: "admin" });
      const { token } = await watcher.command("token:create", { role: "viewer", name: "wall" });
      const viewer = await dashboard.newPage();
      await dashboard.open(viewer, { hashToken: token });
      await waitConnected(viewer);
      await viewer.locator("#verify-summary").filter({ hasText: "clean" }).waitFor();
      await expect(viewer.getByRole("button", { name: "Verify store" }).count()).resolves.toBe(0);
    } finally {
      watcher.close();
    }
  });
});
