import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { requireChromium } from "../helpers/chromium";
import { writeSampleSource } from "../fixtures/streams/sample-source";
import { enterToken, makeToken, otherClient, useDashboard, waitConnected } from "./support/dashboard";

// Selecting images against a real region whose boot source is the recorded upstream index
// (24.04 and 22.04 LTS, CentOS 7 and 8): no payloads, so imports fail, which these tests ignore.

const run = requireChromium();
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

const keysOf = (items: { os: string; release: string; arches: string[] }[]) =>
  items.flatMap((i) => i.arches.map((a) => `${i.os}/${i.release}/${a}`)).sort();

async function releaseBox(page: Page, title: RegExp) {
  const box = page.getByRole("group", { name: "Releases" }).getByRole("checkbox", { name: title });
  await box.waitFor();
  return box;
}

describe.skipIf(!run)("dashboard: the selection", () => {
  const dashboard = useDashboard(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "bootstream-source-"));
    dirs.push(dir);
    return { env: { BOOT_SOURCE_URL: await writeSampleSource(dir) } };
  });

  it("lists the catalogue and saves an edit; Save is enabled only when something changed", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    const save = page.getByRole("button", { name: "Save selection" });
    await expect(save.isDisabled()).resolves.toBe(true);

    const jammy = await releaseBox(page, /22\.04/);
    const wasChecked = await jammy.isChecked();
    await jammy.setChecked(!wasChecked);
    await expect(save.isEnabled()).resolves.toBe(true);
    // Undoing the edit disables it again.
    await jammy.setChecked(wasChecked);
    await expect(save.isDisabled()).resolves.toBe(true);

    await jammy.setChecked(!wasChecked);
    await save.click();
    await page.getByText(/Selection saved \(revision \d+\)/).waitFor();
    await expect(save.isDisabled()).resolves.toBe(true);

    const watcher = await otherClient(dashboard.region.url, dashboard.region.adminToken);
    try {
      const keys = keysOf(watcher.state.selection.items);
      expect(keys.includes("ubuntu/jammy/amd64")).toBe(!wasChecked);
    } finally {
      watcher.close();
    }
  });

  it("keeps my edits when another admin saves, and applies them on top", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    const alice = await otherClient(
      dashboard.region.url,
      await makeToken(dashboard.region, "admin", "alice"),
    );
    try {
      const before = alice.state.selection;
      // My edit: CentOS 8 amd64.
      const centos8 = page.getByRole("group", { name: /CentOS 8/ }).getByRole("checkbox", { name: "amd64" });
      await centos8.check();

      // Alice saves CentOS 7 meanwhile.
      const items = [
        ...before.items.filter((i) => i.os !== "centos"),
        { os: "centos", release: "centos70", arches: ["amd64"] },
      ];
      await alice.command("selection:save", { revision: before.revision, items });

      const banner = page
        .getByRole("alert")
        .filter({ hasText: "saved the selection while you were editing" });
      await banner.waitFor();
      await expect(banner.textContent()).resolves.toMatch(/alice.*added CentOS 7 amd64/s);
      await expect(banner.textContent()).resolves.toMatch(
        /Your unsaved changes are kept: added CentOS 8 amd64/,
      );
      // Saving is held until I choose.
      await expect(page.getByRole("button", { name: "Save selection" }).isDisabled()).resolves.toBe(true);
      await expect(centos8.isChecked()).resolves.toBe(true);

      await banner.getByRole("button", { name: "Apply my changes on top" }).click();
      await page.getByRole("button", { name: "Save selection" }).click();
      await page.getByText(/Selection saved/).waitFor();

      await expect
        .poll(() => keysOf(alice.state.selection.items))
        .toEqual(expect.arrayContaining(["centos/centos70/amd64", "centos/8/amd64"]));
    } finally {
      alice.close();
    }
  });

  it("discarding my edits takes the other admin's selection", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    const bob = await otherClient(dashboard.region.url, await makeToken(dashboard.region, "admin", "bob"));
    try {
      const jammy = await releaseBox(page, /22\.04/);
      const mine = !(await jammy.isChecked());
      await jammy.setChecked(mine);
      const { revision, items } = bob.state.selection;
      await bob.command("selection:save", {
        revision,
        items: items.filter((i) => !(i.os === "centos" && i.release === "centos70")),
      });
      const banner = page.getByRole("alert").filter({ hasText: "bob" });
      await banner.getByRole("button", { name: "Discard my changes" }).click();
      await banner.waitFor({ state: "detached" });
      await expect(jammy.isChecked()).resolves.toBe(!mine);
      await expect(page.getByRole("button", { name: "Save selection" }).isDisabled()).resolves.toBe(true);
    } finally {
      bob.close();
    }
  });

  it("the hourly sync switch flips for everyone", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    const watcher = await otherClient(dashboard.region.url, dashboard.region.adminToken);
    try {
      const toggle = page.getByRole("switch", { name: "Sync images hourly" });
      const was = await toggle.isChecked();
      await toggle.setChecked(!was, { force: true });
      await expect.poll(() => watcher.state.settings.autoImport).toBe(!was);
      // And back from the other side: the page follows.
      await watcher.command("settings:update", { autoImport: was });
      await expect.poll(() => toggle.isChecked()).toBe(was);
    } finally {
      watcher.close();
    }
  });

  it("a viewer sees everything with the controls disabled, and why", async () => {
    const token = await makeToken(dashboard.region, "viewer", "wall");
    const page = await dashboard.newPage();
    await dashboard.open(page);
    await enterToken(page, token);
    await waitConnected(page);
    await page.getByText(/a viewer: you can watch everything here/).waitFor();
    await expect(page.getByRole("switch", { name: "Sync images hourly" }).isDisabled()).resolves.toBe(true);
    await expect((await releaseBox(page, /24\.04/)).isDisabled()).resolves.toBe(true);
    await expect(page.getByRole("button", { name: "Save selection" }).isDisabled()).resolves.toBe(true);
    await expect(page.locator("header .you").textContent()).resolves.toMatch(/wall\s*viewer/);
  });
});
