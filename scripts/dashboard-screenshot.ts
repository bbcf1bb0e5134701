// Regenerates docs/dashboard.png, the README's picture of the dashboard on an ordinary day:
//
//   npm run build && node --import tsx scripts/dashboard-screenshot.ts [OUT.png]
//
// Everything is real and on loopback: mirrors written to temp dirs and served over HTTP, a region,
// two rack agents. The region imports a selection at full speed (synced on both racks); then the
// boot source moves to a second mirror that no longer offers Ubuntu 25.04 (a warning: the held
// version stays served), rack-2 goes offline, scheduled imports are held to a night window, the new
// source publishes a newer version and an import of it, started by hand, runs under the region's
// download cap. The shot (1600×1000, or WIDTH/HEIGHT) is taken once some rows are part-way through
// their update. A viewer (a wall screen) is connected too.
// Needs Chromium (CHROMIUM_PATH, default /usr/bin/chromium) and the built dashboard.

import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { launchChromium } from "../test/helpers/chromium";
import { waitFor, watch } from "../test/helpers/watch";
import { MiB, startStack } from "../test/e2e/support/stack";
import { startMirror } from "../test/helpers/mirror";

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
  const layout = {
    arches: ["amd64", "arm64"],
    kernels: ["ga", "hwe"] as const,
    centos: ["centos70"],
    versions: 1,
    sizes: { kernel: 1 * MiB, initrd: 3 * MiB, squashfs: 12 * MiB, root: 10 * MiB },
  };
  const stack = await startStack({
    mirror: { ...layout, kernels: [...layout.kernels], releases: ["jammy", "noble", "plucky"] },
    env: { DOWNLOAD_CONCURRENCY: "3", IMPORT_SCHEDULE: "*/2 * * * * *" },
    racks: ["rack-1", "rack-2"],
  });
  // The next source: the same images but Ubuntu 25.04, which it no longer offers.
  const next = await startMirror({ ...layout, kernels: [...layout.kernels], releases: ["jammy", "noble"] });
  const browser = await launchChromium();
  try {
    // Alice is the admin at work; the region's own admin token only makes the tokens.
    const admin = await watch(stack.region.url, stack.region.adminToken);
    const alice = (await admin.command("token:create", { role: "admin", name: "alice" })).token;
    const wall = (await admin.command("token:create", { role: "viewer", name: "noc-wall" })).token;
    admin.close();

    const client = await watch(stack.region.url, alice);
    try {
      await client.command("selection:save", {
        revision: client.state.selection.revision,
        items: [
          { os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] },
          { os: "ubuntu", release: "jammy", arches: ["amd64"] },
          { os: "ubuntu", release: "plucky", arches: ["amd64"] },
          { os: "centos", release: "centos70", arches: ["amd64"] },
        ],
      });
      await waitFor(
        client,
        (s) =>
          !s.import.running &&
          s.images.size === 5 &&
          [...s.images.values()].every((i) => i.state === "rack-synced"),
        120_000,
        "the images on both racks",
      );
      // Hourly sync off: the schedule only marks what is new. Imports go at night, within a cap.
      await client.command("settings:update", {
        autoImport: false,
        importWindow: { start: "01:00", end: "05:00", timezone: "UTC" },
      });
      await client.command("source:update", { url: next.url });
      await waitFor(
        client,
        (s) => s.images.get("ubuntu/plucky/amd64")?.warning != null,
        30_000,
        "plucky's warning",
      );
      await stack.racks[1]!.stop();
      await waitFor(client, (s) => s.racks.some((r) => !r.online), 30_000, "rack-2 offline");
      await next.addVersion();
      await waitFor(
        client,
        (s) => [...s.images.values()].filter((i) => i.next?.state === "available").length >= 3,
        30_000,
        "the newer version available",
      );
      // What is under way: an import by hand under the region's 6 MiB/s cap, three files at a time.
      await client.command("settings:update", { bandwidthLimit: 6 * MiB });
      await client.command("import:start", {});
    } finally {
      client.close();
    }

    // Alice at her desk; the shot is the wall screen's view (a viewer: the images first).
    const desk = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await desk.goto(`${stack.region.url}/#token=${alice}`);
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(`${stack.region.url}/#token=${wall}`);
    await page.getByTestId("summary").waitFor({ timeout: 15_000 });
    // Mid-update: at least two rows part-way (one a third done or more), still served.
    await page.waitForFunction(
      () => {
        const bars = [...document.querySelectorAll('tr[data-next="downloading"] [role="progressbar"]')];
        return bars.length >= 2 && bars.some((bar) => Number(bar.getAttribute("aria-valuenow")) >= 33);
      },
      undefined,
      { timeout: 90_000, polling: 100 },
    );
    await settle(page);
    await mkdir(path.dirname(path.resolve(out)), { recursive: true });
    await page.screenshot({ path: out });
    const summary = await page.getByTestId("summary").textContent();
    const trouble = await page.getByTestId("trouble").textContent();
    console.log(`wrote ${out} (${width}×${height}): ${summary}; ${trouble?.trim()}`);
    return 0;
  } finally {
    await browser.close();
    await next.close();
    await rm(next.dir, { recursive: true, force: true });
    await stack.stop();
  }
}

/** Waits until the rates have their first samples and the page has painted them. */
async function settle(page: Page): Promise<void> {
  await page
    .locator('tr[data-next="downloading"] .rate')
    .filter({ hasText: /\/s$/ })
    .first()
    .waitFor({ timeout: 10_000 });
  await page.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
  );
}

process.exitCode = await main(process.argv.slice(2));
