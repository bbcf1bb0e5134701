import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import { describe, expect, it, onTestFinished } from "vitest";
import { requireChromium } from "../helpers/chromium";
import { useStack, waitConnected } from "./support/dashboard";
import { MiB } from "./support/stack";

// The dashboard under the region's full Content-Security-Policy (`default-src 'self'; frame-ancestors
// 'none'`, issue 12): it loads, connects over a WebSocket, shows a live import with its progress bar
// (a style set while the page runs) and reports no violation. The listeners are shown to catch one:
// at the end the test makes the page break the policy on purpose.

const run = requireChromium();
const CSP = "default-src 'self'; frame-ancestors 'none'";
const JAMMY = "ubuntu/jammy/amd64";

type Violation = { directive: string; blocked: string };

/** Records every `securitypolicyviolation` the page's document sees, from before its first script. */
async function recordViolations(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as { violations: { directive: string; blocked: string }[] };
    w.violations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      w.violations.push({ directive: event.effectiveDirective, blocked: event.blockedURI });
    });
  });
}

const violations = (page: Page) =>
  page.evaluate(() => (window as unknown as { violations: Violation[] }).violations);

describe.skipIf(!run)("dashboard: under the full Content-Security-Policy", () => {
  const dashboard = useStack({
    mirror: {
      releases: ["jammy", "noble"],
      arches: ["amd64"],
      kernels: ["ga"],
      sizes: { squashfs: 4 * MiB },
    },
  });

  it("loads, connects and shows a live import with no violation reported", async () => {
    const page = await dashboard.newPage();
    await recordViolations(page);
    const consoleErrors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    const documents: { url: string; csp: string | undefined }[] = [];
    const favicons: number[] = [];
    page.on("response", (response) => {
      const url = new URL(response.url());
      if (response.request().resourceType() === "document")
        documents.push({ url: url.pathname, csp: response.headers()["content-security-policy"] });
      if (url.pathname === "/favicon.svg") favicons.push(response.status());
    });
    let websocket = "";
    page.on("websocket", (ws) => (websocket = ws.url()));

    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    expect(documents).toEqual([{ url: "/", csp: CSP }]);
    // Socket.IO upgraded to a WebSocket on the region's own origin ('self' covers ws:).
    await expect.poll(() => websocket).toMatch(new RegExp(`^ws://${new URL(dashboard.region.url).host}/`));

    // A download on screen: its progress bar is drawn by a style the page sets as it runs.
    dashboard.stack.throttle(1 * MiB);
    await page
      .getByRole("group", { name: "Releases" })
      .getByRole("checkbox", { name: /22\.04/ })
      .check();
    await page.getByRole("button", { name: "Save selection" }).click();
    const row = page.locator(`tr[data-id="${JAMMY}"]`);
    await row
      .locator("td.status .text")
      .filter({ hasText: /^Downloading \d+%$/ })
      .waitFor({ timeout: 30_000 });
    const bar = row.locator(".progress .bar");
    await expect.poll(() => bar.evaluate((el) => getComputedStyle(el).transform)).toMatch(/^matrix\(/);
    dashboard.stack.throttle(Infinity);
    await row
      .locator("td.status .text")
      .filter({ hasText: /^Synced$/ })
      .waitFor({ timeout: 30_000 });

    // The favicon is the region's own file (a data: URI would be refused by img-src).
    await expect.poll(() => favicons).toEqual([200]);
    expect(await violations(page)).toEqual([]);
    expect(consoleErrors.filter((text) => /Content Security Policy/i.test(text))).toEqual([]);

    // The listeners do catch a violation: an image from a data: URI, and an inline script.
    await page.evaluate(() => {
      const img = document.createElement("img");
      img.src = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";
      document.body.append(img);
      const script = document.createElement("script");
      script.textContent = "window.inlineRan = true";
      document.body.append(script);
    });
    await expect
      .poll(async () => (await violations(page)).map((v) => v.directive).sort())
      .toEqual(["img-src", "script-src-elem"]);
    await expect(page.evaluate(() => "inlineRan" in window)).resolves.toBe(false);
    await expect
      .poll(() => consoleErrors.filter((text) => /Content Security Policy/i.test(text)).length)
      .toBe(2);
  });

  it("cannot be framed by a page of another origin; a page without the header can", async () => {
    const page = await dashboard.newPage();
    const region = new URL(dashboard.region.url);
    // A page of another origin (another port on loopback) frames the dashboard and, as the control,
    // the mirror's index (served without any security header).
    const control = new URL("streams/v1/index.json", dashboard.stack.mirror.url).href;
    const html =
      `<script>window.loaded = [];</script>` +
      `<iframe id="dashboard" src="${region.origin}/" onload="loaded.push('dashboard')"></iframe>` +
      `<iframe id="control" src="${control}" onload="loaded.push('control')"></iframe>`;
    const server = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(html));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    onTestFinished(() => new Promise<void>((done) => server.close(() => done())));
    const framer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    await page.goto(framer);
    await expect
      .poll(() => page.evaluate(() => (window as unknown as { loaded: string[] }).loaded.sort()))
      .toEqual(["control", "dashboard"]);
    const frames = page.frames().filter((f) => f !== page.mainFrame());
    const urls = frames.map((f) => f.url());
    const controlFrame = frames.find((f) => f.url() === control);
    expect(controlFrame, urls.join(", ")).toBeDefined();
    await expect(controlFrame!.locator("body").textContent()).resolves.toContain("index");
    // The dashboard's frame holds Chromium's error page, never the dashboard.
    expect(urls.filter((u) => u.startsWith(region.origin))).toEqual([]);
  });
});
