import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { launchChromium, requireChromium } from "../helpers/chromium";
import { FAKE_ADMIN, startFakeRegion, type FakeRegion } from "./support/fake-region";
import { waitConnected } from "./support/dashboard";

// 500 images and 20 progress events a second: the page must stay responsive. A scripted region
// (support/fake-region.ts) makes the load; the real region cannot produce it on demand.

const run = requireChromium();

describe.skipIf(!run)("dashboard at scale", () => {
  let region: FakeRegion;
  let browser: Browser;

  beforeAll(async () => {
    [region, browser] = await Promise.all([
      startFakeRegion({ images: 500, updatesPerSecond: 20 }),
      launchChromium(),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await region?.stop();
  });

  it("renders 500 images and keeps up with 20 updates a second without long tasks", async () => {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.addInitScript(() => {
      const w = window as unknown as { longTasks: number[] };
      w.longTasks = [];
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) w.longTasks.push(entry.duration);
      }).observe({ type: "longtask", buffered: false });
    });
    await page.goto(`${region.url}/#token=${FAKE_ADMIN}`);
    await waitConnected(page);
    await expect(page.locator("table.images tbody tr").count()).resolves.toBe(500);

    // Let the first render settle, then measure five seconds of live updates.
    await page.waitForTimeout(1000);
    const before = region.sent;
    await page.evaluate(() => ((window as unknown as { longTasks: number[] }).longTasks = []));
    const frames = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          let n = 0;
          const start = performance.now();
          const tick = () => {
            n++;
            if (performance.now() - start < 5000) requestAnimationFrame(tick);
            else resolve(n);
          };
          requestAnimationFrame(tick);
        }),
    );
    const sent = region.sent - before;
    const longTasks = await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks);
    console.log(`scale: ${sent} events, ${frames / 5} fps, long tasks ${JSON.stringify(longTasks)}`);
    expect(sent).toBeGreaterThanOrEqual(80);
    expect(frames / 5).toBeGreaterThan(30); // frames per second
    expect(Math.max(0, ...longTasks)).toBeLessThan(200);

    // A control still answers at once while the updates pour in.
    const started = Date.now();
    await page.getByRole("checkbox", { name: /22\.04/ }).check();
    await page.getByRole("button", { name: "Save selection" }).waitFor({ state: "visible" });
    await expect(page.getByRole("button", { name: "Save selection" }).isEnabled()).resolves.toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);

    // The rows show the live progress.
    const downloading = page.locator('tr[data-state="downloading"] td.status');
    await expect(downloading.first().textContent()).resolves.toMatch(/Downloading \d+%/);
  });
});
