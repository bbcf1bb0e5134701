// Regenerates docs/dashboard.png, the README's picture of the dashboard mid-import:
//
//   npm run build && node --import tsx scripts/dashboard-screenshot.ts [OUT.png]
//
// Everything is real and on loopback: a mirror written to a temp dir and served over HTTP behind a
// throttle, a region, two rack agents. The region imports its default image and a few more at full
// speed (synced on both racks), then a bigger selection is saved with the mirror throttled, and the
// shot (1600×1000, or WIDTH/HEIGHT) is taken once some images are part-way through downloading while
// others wait in the queue. A viewer (a wall screen) is connected too, so presence shows two people.
// Needs Chromium (CHROMIUM_PATH, default /usr/bin/chromium) and the built dashboard.

import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { launchChromium } from "../test/helpers/chromium";
import { waitFor, watch } from "../test/helpers/watch";
import { MiB, startStack } from "../test/e2e/support/stack";

const WEB_DIST = fileURLToPath(new URL("../apps/web/dist/index.html", import.meta.url));

async function main(argv: string[]): Promise<number> {
  const out = argv[0] ?? "docs/dashboard.png";
  const width = Number(process.env.WIDTH ?? 1600);
  const height = Number(process.env.HEIGHT ?? 1000);
  if (!existsSync(WEB_DIST)) {
    console.error(`the dashboard is not built (${WEB_DIST}): run npm run build first`);
    return 1;
  }
  console.log("starting a mirror, a region and two racks …");
  const stack = await startStack({
    mirror: {
      releases: ["jammy", "noble", "plucky"],
      arches: ["amd64", "arm64"],
      kernels: ["ga", "hwe"],
      centos: ["centos70", "8"],
      sizes: { kernel: 1 * MiB, initrd: 3 * MiB, squashfs: 12 * MiB, root: 10 * MiB },
    },
    env: { DOWNLOAD_CONCURRENCY: "3" },
    racks: ["rack-1", "rack-2"],
  });
  const browser = await launchChromium();
  try {
    // Alice is the admin at work; the region's own admin token only makes the tokens.
    const admin = await watch(stack.region.url, stack.region.adminToken);
    const alice = (await admin.command("token:create", { role: "admin", name: "alice" })).token;
    const wall = (await admin.command("token:create", { role: "viewer", name: "noc-wall" })).token;
    admin.close();

    const client = await watch(stack.region.url, alice);
    try {
      const save = async (items: { os: string; release: string; arches: string[] }[]) =>
        client.command("selection:save", { revision: client.state.selection.revision, items });
      // What is already done: synced in the region and on both racks.
      await save([
        { os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] },
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
        { os: "centos", release: "centos70", arches: ["amd64"] },
      ]);
      await waitFor(
        client,
        (s) =>
          !s.import.running &&
          s.images.size === 4 &&
          [...s.images.values()].every((i) => i.state === "rack-synced"),
        60_000,
        "the first images on both racks",
      );
      // What is under way: the mirror slows to 2 MiB/s a connection, three files at a time.
      stack.throttle(2 * MiB);
      await save([
        { os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] },
        { os: "ubuntu", release: "jammy", arches: ["amd64", "arm64"] },
        { os: "ubuntu", release: "plucky", arches: ["amd64", "arm64"] },
        { os: "centos", release: "centos70", arches: ["amd64"] },
        { os: "centos", release: "8", arches: ["amd64"] },
      ]);
    } finally {
      client.close();
    }

    const wallScreen = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await wallScreen.goto(`${stack.region.url}/#token=${wall}`);
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(`${stack.region.url}/#token=${alice}`);
    await page.getByTestId("summary").waitFor({ timeout: 15_000 });
    // Mid-import: at least two images part-way (one a third done or more), the rest queued behind them.
    await page.waitForFunction(
      () => {
        const bars = [...document.querySelectorAll('tr[data-state="downloading"] [role="progressbar"]')];
        return bars.length >= 2 && bars.some((bar) => Number(bar.getAttribute("aria-valuenow")) >= 33);
      },
      undefined,
      { timeout: 60_000, polling: 100 },
    );
    await settle(page);
    await mkdir(path.dirname(path.resolve(out)), { recursive: true });
    await page.screenshot({ path: out });
    const summary = await page.getByTestId("summary").textContent();
    console.log(`wrote ${out} (${width}×${height}): ${summary}`);
    return 0;
  } finally {
    await browser.close();
    await stack.stop();
  }
}

/** Waits until the rates have their first samples and the page has painted them. */
async function settle(page: Page): Promise<void> {
  await page
    .locator('tr[data-state="downloading"] .rate')
    .filter({ hasText: /\/s$/ })
    .first()
    .waitFor({ timeout: 10_000 });
  await page.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
  );
}

process.exitCode = await main(process.argv.slice(2));
