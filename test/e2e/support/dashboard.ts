// Shared setup for the dashboard's browser tests: one real region and one chromium per test file, a
// fresh browser context (empty localStorage) per page, and helpers that read the page the way a
// person does (labels, roles, visible text).

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { createClient, type BootstreamClient } from "@bootstream/protocol/client";
import { launchChromium } from "../../helpers/chromium";
import { removeDir, startRegion, type RegionOptions, type RegionProcess } from "../../helpers/region";
import { startStack, type Stack, type StackOptions } from "./stack";

export const WEB_DIST = fileURLToPath(new URL("../../../apps/web/dist/index.html", import.meta.url));

export type Dashboard = {
  readonly region: RegionProcess;
  readonly browser: Browser;
  /** A new page in its own context; closed after the file's tests. */
  newPage(options?: { width?: number; height?: number }): Promise<Page>;
  /** Opens the dashboard; with `hashToken` the token goes in `#token=`. */
  open(page: Page, options?: { hashToken?: string; path?: string }): Promise<void>;
};

/**
 * Registers beforeAll/afterAll hooks for a region and a browser; use inside a describe block.
 * `options` may be a function, run in beforeAll (e.g. to write a boot source first).
 */
export function useDashboard(options: RegionOptions | (() => Promise<RegionOptions>) = {}): Dashboard {
  let region: RegionProcess | null = null;
  let ownDataDir = true;
  return withBrowser(
    async () => {
      const resolved = typeof options === "function" ? await options() : options;
      ownDataDir = !resolved.dataDir;
      region = await startRegion(resolved);
      return region;
    },
    async () => {
      if (!region) return;
      await region.stop();
      if (ownDataDir) await removeDir(region.dataDir);
    },
  );
}

export type StackDashboard = Dashboard & { readonly stack: Stack };

/**
 * As useDashboard, with the region importing from a real throttled mirror and real racks running
 * (support/stack.ts).
 */
export function useStack(options: StackOptions = {}): StackDashboard {
  let stack: Stack | null = null;
  const dashboard = withBrowser(
    async () => {
      stack = await startStack(options);
      return stack.region;
    },
    async () => {
      await stack?.stop();
    },
  );
  return Object.defineProperty(dashboard, "stack", {
    get() {
      if (!stack) throw new Error("stack not started");
      return stack;
    },
  }) as StackDashboard;
}

function withBrowser(start: () => Promise<RegionProcess>, stop: () => Promise<void>): Dashboard {
  let region: RegionProcess | null = null;
  let browser: Browser | null = null;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    if (!existsSync(WEB_DIST)) throw new Error(`the dashboard is not built (${WEB_DIST}): run npm run build`);
    const launched = launchChromium();
    try {
      region = await start();
    } finally {
      browser = await launched;
    }
  });

  afterAll(async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => undefined)));
    await browser?.close();
    await stop();
  });

  return {
    get region() {
      if (!region) throw new Error("region not started");
      return region;
    },
    get browser() {
      if (!browser) throw new Error("browser not started");
      return browser;
    },
    async newPage({ width = 1400, height = 900 } = {}) {
      const context = await this.browser.newContext({ viewport: { width, height } });
      contexts.push(context);
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      return page;
    },
    async open(page, { hashToken, path = "/" } = {}) {
      const hash = hashToken === undefined ? "" : `#token=${encodeURIComponent(hashToken)}`;
      await page.goto(`${this.region.url}${path}${hash}`);
    },
  };
}

/** Fills the token prompt and connects. */
export async function enterToken(page: Page, token: string): Promise<void> {
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Connect" }).click();
}

/** The header's connection state: "Connected", "Reconnecting…", … */
export function connectionState(page: Page) {
  return page.locator("header .conn");
}

/** Logs in a second party over Socket.IO with the typed client (another admin, a script). */
export async function otherClient(url: string, token: string): Promise<BootstreamClient> {
  const client = createClient({ url, token, io: { transports: ["websocket"] } });
  await client.connect();
  return client;
}

/** Makes a token with `role` for `name` (as the region's admin) and returns it. */
export async function makeToken(
  region: RegionProcess,
  role: "admin" | "viewer",
  name: string,
): Promise<string> {
  const admin = await otherClient(region.url, region.adminToken);
  try {
    const { token } = await admin.command("token:create", { role, name });
    return token;
  } finally {
    admin.close();
  }
}

/** Waits until the dashboard is connected and has its first snapshot on screen. */
export async function waitConnected(page: Page): Promise<void> {
  await connectionState(page).filter({ hasText: "Connected" }).waitFor();
  await page.getByTestId("summary").waitFor();
}
