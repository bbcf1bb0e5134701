import { accessSync, constants } from "node:fs";
import { chromium, type Browser, type LaunchOptions } from "playwright-core";

// Debian's chromium, driven by playwright-core (Playwright's own browser download is not used).

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** True when the chromium executable exists and can be run. */
export function chromiumAvailable(): boolean {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Decides whether the browser suite runs. In CI (CI=true) a missing chromium is an error that fails the
 * suite; elsewhere the suite is skipped, loudly. Call it at module level and pass the result to
 * `describe.skipIf(!…)`.
 */
export function requireChromium(): boolean {
  if (chromiumAvailable()) return true;
  const why = `chromium not found at ${CHROMIUM_PATH} (install it with \`apt-get install -y chromium\` or set CHROMIUM_PATH)`;
  if (process.env.CI === "true" || process.env.CI === "1") {
    throw new Error(`browser tests cannot run in CI: ${why}`);
  }
  console.warn(`\n${"!".repeat(78)}\n!! SKIPPING the browser tests: ${why}\n${"!".repeat(78)}\n`);
  return false;
}

export function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    ...options,
  });
}
