// Takes a screenshot of a running dashboard: `node --import tsx scripts/screenshot.ts URL [OUT.png]`.
// The URL can carry the token as `#token=…`. Writes screenshot.png by default. (The README's
// docs/dashboard.png comes from scripts/dashboard-screenshot.ts, which sets up the whole import.)
//
// Options (environment): WIDTH, HEIGHT (viewport, default 1600×1000), FULL_PAGE=1, WAIT_FOR (a CSS
// selector or text=… to wait for before the shot), DELAY_MS (extra settle time, default 500).

import { mkdir } from "node:fs/promises";
import path from "node:path";
import { launchChromium } from "../test/helpers/chromium";

async function main(argv: string[]): Promise<number> {
  const [url, out = "screenshot.png"] = argv;
  if (!url) {
    console.error("usage: screenshot URL [OUT.png]   (e.g. http://127.0.0.1:5240/#token=…)");
    return 2;
  }
  const width = Number(process.env.WIDTH ?? 1600);
  const height = Number(process.env.HEIGHT ?? 1000);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(url, { waitUntil: "load" });
    const waitFor = process.env.WAIT_FOR ?? "[data-testid=summary]";
    await page.locator(waitFor).first().waitFor({ timeout: 15_000 });
    await page.waitForTimeout(Number(process.env.DELAY_MS ?? 500));
    await mkdir(path.dirname(path.resolve(out)), { recursive: true });
    await page.screenshot({ path: out, fullPage: process.env.FULL_PAGE === "1" });
    console.log(`wrote ${out}`);
    return 0;
  } finally {
    await browser.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
