import { describe, expect, it } from "vitest";
import { requireChromium } from "../helpers/chromium";
import { connectionState, enterToken, makeToken, useDashboard, waitConnected } from "./support/dashboard";

const run = requireChromium();

describe.skipIf(!run)("dashboard: connecting", () => {
  const dashboard = useDashboard();

  it("asks for a token, connects and shows who you are", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page);
    await expect(page.getByLabel("API token").isVisible()).resolves.toBe(true);

    await enterToken(page, dashboard.region.adminToken);
    await waitConnected(page);

    await expect(connectionState(page).textContent()).resolves.toContain("Connected");
    const you = (await page.locator("header .you").textContent()) ?? "";
    expect(you).toMatch(/You:\s*admin\s*admin/);
    await expect(page.getByRole("heading", { name: "Images", level: 1 }).isVisible()).resolves.toBe(true);
    // Admins get working controls.
    await expect(page.getByRole("switch", { name: "Sync images hourly" }).isEnabled()).resolves.toBe(true);
    // The token is kept for the next visit.
    await expect(page.evaluate(() => localStorage.getItem("bootstream.token"))).resolves.toBe(
      dashboard.region.adminToken,
    );
    await expect(page.title()).resolves.toMatch(/Images · Bootstream$/);
  });

  it("shows a wrong token as refused and lets you enter another", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page);
    await enterToken(page, "not-a-valid-token");

    const alert = page.getByRole("alert");
    await alert.filter({ hasText: "Refused" }).waitFor();
    await expect(alert.textContent()).resolves.toContain("unauthorized");
    // A refused token is not remembered.
    await expect(page.evaluate(() => localStorage.getItem("bootstream.token"))).resolves.toBeNull();

    // The prompt is still there: another token gets in.
    await enterToken(page, dashboard.region.adminToken);
    await waitConnected(page);
  });

  it("connects with #token= in the URL and strips it from the address bar", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);

    expect(page.url()).not.toContain("token");
    expect(new URL(page.url()).hash).toBe("");
    await expect(page.locator("header .you").textContent()).resolves.toContain("admin");

    // A reload stays signed in (the token was kept), without the token in the URL.
    await page.reload();
    await waitConnected(page);
  });

  it("asks before a #token= link replaces the token this browser holds", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    const viewer = await makeToken(dashboard.region, "viewer", "link-viewer");
    const asked: string[] = [];

    // Declined: the stored admin token stays, and the link's token is gone from the address bar.
    page.once("dialog", (dialog) => {
      asked.push(dialog.message());
      void dialog.dismiss();
    });
    await dashboard.open(page, { hashToken: viewer });
    await page.reload();
    await waitConnected(page);
    expect(asked).toEqual([expect.stringContaining("Replace the stored token")]);
    expect(page.url()).not.toContain("token");
    await expect(page.locator("header .you").textContent()).resolves.toMatch(/admin\s*admin/);

    // Accepted: the link's token is used and kept.
    page.once("dialog", (dialog) => void dialog.accept());
    await dashboard.open(page, { hashToken: viewer });
    await page.reload();
    await waitConnected(page);
    await expect(page.locator("header .you").textContent()).resolves.toContain("link-viewer");
    await expect(page.evaluate(() => localStorage.getItem("bootstream.token"))).resolves.toBe(viewer);
  });
});
