import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, requireChromium } from "../helpers/chromium";
import { removeDir } from "../helpers/region";
import { fillDatabase, regionConfig } from "../helpers/in-process";
import { startRegion, type RegionHandle } from "../../apps/server/src/region/region";
import { createLogger } from "../../apps/server/src/log";

const run = requireChromium();
const TOKEN = "e2e-health-admin-0123456789abcdef0123456789";

// In-process, as test/integration/health.test.ts: PRAGMA max_page_count on the region's own SQLite
// connection makes its writes fail with SQLITE_FULL for real.
describe.skipIf(!run)("dashboard: a degraded region", () => {
  let dataDir: string;
  let region: RegionHandle;
  let browser: Browser;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "bootstream-e2e-health-"));
    region = await startRegion(
      regionConfig(dataDir, { adminToken: TOKEN }),
      createLogger("silent", "e2e-health"),
    );
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await region?.close();
    await removeDir(dataDir);
  });

  it("shows a banner while database writes fail, and takes it down when they succeed again", async () => {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${region.url}/#token=${TOKEN}`);
    await page.locator("header .conn").filter({ hasText: "Connected" }).waitFor();
    await expect(page.locator("#health-banner").count()).resolves.toBe(0);

    const full = await fillDatabase(region);
    try {
      const banner = page.locator("#health-banner");
      await banner.waitFor();
      await expect(banner.textContent()).resolves.toMatch(
        /Region degraded: database writes failing: SQLITE_FULL: database or disk is full/,
      );
      await expect(banner.getAttribute("role")).resolves.toBe("alert");
    } finally {
      await full.release();
    }
    // The probe write succeeds within its interval: the banner goes without a reload.
    await page.locator("#health-banner").waitFor({ state: "detached", timeout: 30_000 });
  });
});
