import { describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { requireChromium } from "../helpers/chromium";
import { connect, send } from "../helpers/sockets";
import { enterToken, makeToken, otherClient, useStack, waitConnected } from "./support/dashboard";

// Selecting images against a real region importing from a real local mirror (HTTP, tiny payloads):
// Ubuntu 22.04 and 24.04 (amd64), CentOS 7 and 8. Several admins at once, a viewer, the hourly switch.

const run = requireChromium();

const keysOf = (items: { os: string; release: string; arches: string[] }[]) =>
  items.flatMap((i) => i.arches.map((a) => `${i.os}/${i.release}/${a}`)).sort();

async function releaseBox(page: Page, title: RegExp) {
  const box = page.getByRole("group", { name: "Releases" }).getByRole("checkbox", { name: title });
  await box.waitFor();
  return box;
}

const otherBox = (page: Page, title: RegExp) =>
  page.getByRole("group", { name: title }).getByRole("checkbox", { name: "amd64" });

const statusOf = (page: Page, id: string) => page.locator(`tr[data-id="${id}"] td.status .text`);

describe.skipIf(!run)("dashboard: the selection", () => {
  const dashboard = useStack({
    mirror: { releases: ["jammy", "noble"], arches: ["amd64"], kernels: ["ga"], centos: ["centos70", "8"] },
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

  it("two admins in two browsers: A saves, B sees it live, keeps its edits and is shown the conflict", async () => {
    const alice = await dashboard.newPage();
    await dashboard.open(alice, { hashToken: await makeToken(dashboard.region, "admin", "alice") });
    const bob = await dashboard.newPage();
    await dashboard.open(bob, { hashToken: await makeToken(dashboard.region, "admin", "bob") });
    await Promise.all([waitConnected(alice), waitConnected(bob)]);
    // Each sees the other here.
    await bob.locator("header .presence li").filter({ hasText: "alice" }).waitFor();
    await alice.locator("header .presence li").filter({ hasText: "bob" }).waitFor();

    // Bob's edit, unsaved: CentOS 8.
    await otherBox(bob, /CentOS 8/).check();
    await bob.getByText("Unsaved: added CentOS 8 amd64.").waitFor();

    // Alice saves CentOS 7 in her browser.
    await otherBox(alice, /CentOS 7/).check();
    await alice.getByRole("button", { name: "Save selection" }).click();
    await alice.getByText(/Selection saved \(revision \d+\)/).waitFor();

    // Bob is told who changed what, and that his edit is kept; saving waits for his choice.
    const banner = bob.getByRole("alert").filter({ hasText: "saved the selection while you were editing" });
    await banner.waitFor();
    await expect(banner.textContent()).resolves.toMatch(/alice.*added CentOS 7 amd64/s);
    await expect(banner.textContent()).resolves.toMatch(
      /Your unsaved changes are kept: added CentOS 8 amd64/,
    );
    await expect(bob.getByRole("button", { name: "Save selection" }).isDisabled()).resolves.toBe(true);
    await expect(otherBox(bob, /CentOS 8/).isChecked()).resolves.toBe(true);
    // And Alice's image arrives in Bob's table live, and imports.
    await statusOf(bob, "centos/centos70/amd64")
      .filter({ hasText: /^Synced$/ })
      .waitFor();
    await expect(
      bob.getByRole("status").filter({ hasText: "alice saved the image selection." }).count(),
    ).resolves.toBeLessThanOrEqual(1);
    // Alice, who had nothing unsaved, sees no banner.
    await expect(
      alice.getByRole("alert").filter({ hasText: "while you were editing" }).count(),
    ).resolves.toBe(0);

    await banner.getByRole("button", { name: "Apply my changes on top" }).click();
    await expect(otherBox(bob, /CentOS 7/).isChecked()).resolves.toBe(true);
    await bob.getByRole("button", { name: "Save selection" }).click();
    await bob.getByText(/Selection saved/).waitFor();

    // Both selections are kept, and Alice's page follows Bob's save.
    await expect.poll(() => otherBox(alice, /CentOS 8/).isChecked()).toBe(true);
    await expect(otherBox(alice, /CentOS 7/).isChecked()).resolves.toBe(true);
    await statusOf(alice, "centos/8/amd64")
      .filter({ hasText: /^Synced$/ })
      .waitFor();
    const watcher = await otherClient(dashboard.region.url, dashboard.region.adminToken);
    try {
      expect(keysOf(watcher.state.selection.items)).toEqual(
        expect.arrayContaining(["centos/centos70/amd64", "centos/8/amd64", "ubuntu/noble/amd64"]),
      );
      const { entries } = await watcher.command("audit:list", {});
      // Newest first.
      const saves = entries.filter((e) => e.action === "selection:save").map((e) => e.by);
      expect(saves.slice(0, 2)).toEqual(["bob", "alice"]);
    } finally {
      watcher.close();
    }
  });

  it("discarding my edits takes the other admin's selection", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    // A script this time, on the typed client.
    const carol = await otherClient(
      dashboard.region.url,
      await makeToken(dashboard.region, "admin", "carol"),
    );
    try {
      const jammy = await releaseBox(page, /22\.04/);
      const mine = !(await jammy.isChecked());
      await jammy.setChecked(mine);
      const { revision, items } = carol.state.selection;
      await carol.command("selection:save", {
        revision,
        items: items.filter((i) => !(i.os === "centos" && i.release === "centos70")),
      });
      const banner = page.getByRole("alert").filter({ hasText: "carol" });
      await expect(banner.textContent()).resolves.toMatch(/carol.*removed CentOS 7 amd64/s);
      await banner.getByRole("button", { name: "Discard my changes" }).click();
      await banner.waitFor({ state: "detached" });
      await expect(jammy.isChecked()).resolves.toBe(!mine);
      await expect(otherBox(page, /CentOS 7/).isChecked()).resolves.toBe(false);
      await expect(page.getByRole("button", { name: "Save selection" }).isDisabled()).resolves.toBe(true);
      // The removed image leaves the table at once.
      await statusOf(page, "centos/centos70/amd64").waitFor({ state: "detached" });
    } finally {
      carol.close();
    }
  });

  it("the hourly sync switch flips for everyone, and stays flipped across a reload", async () => {
    const page = await dashboard.newPage();
    await dashboard.open(page, { hashToken: dashboard.region.adminToken });
    await waitConnected(page);
    const watcher = await otherClient(dashboard.region.url, dashboard.region.adminToken);
    try {
      const toggle = page.getByRole("switch", { name: "Sync images hourly" });
      await expect(toggle.isChecked()).resolves.toBe(true); // a fresh region syncs hourly
      await toggle.setChecked(false, { force: true });
      await expect.poll(() => watcher.state.settings.autoImport).toBe(false);

      // A reload reads it back from the region.
      await page.reload();
      await waitConnected(page);
      await expect(toggle.isChecked()).resolves.toBe(false);
      // So does another browser, and the activity feed says who did it.
      const other = await dashboard.newPage();
      await dashboard.open(other, { hashToken: dashboard.region.adminToken });
      await waitConnected(other);
      await expect(other.getByRole("switch", { name: "Sync images hourly" }).isChecked()).resolves.toBe(
        false,
      );

      // And back from the other side: both pages follow, live.
      await watcher.command("settings:update", { autoImport: true });
      await expect.poll(() => toggle.isChecked()).toBe(true);
      await expect
        .poll(() => other.getByRole("switch", { name: "Sync images hourly" }).isChecked())
        .toBe(true);
      await page.reload();
      await waitConnected(page);
      await expect(toggle.isChecked()).resolves.toBe(true);
    } finally {
      watcher.close();
    }
  });

  it("a viewer sees everything with the controls disabled, and the region refuses it anyway", async () => {
    const token = await makeToken(dashboard.region, "viewer", "wall");
    const page = await dashboard.newPage();
    await dashboard.open(page);
    await enterToken(page, token);
    await waitConnected(page);
    await page.getByText(/a viewer: you can watch everything here/).waitFor();
    await expect(page.locator("header .you").textContent()).resolves.toMatch(/wall\s*viewer/);
    // The images are all there.
    await statusOf(page, "ubuntu/noble/amd64")
      .filter({ hasText: /^Synced$/ })
      .waitFor();

    // Every control that changes something is disabled.
    const toggle = page.getByRole("switch", { name: "Sync images hourly" });
    await expect(toggle.isDisabled()).resolves.toBe(true);
    await expect((await releaseBox(page, /24\.04/)).isDisabled()).resolves.toBe(true);
    const checkboxes = page.getByRole("checkbox");
    expect(await checkboxes.count()).toBeGreaterThanOrEqual(5);
    for (const box of await checkboxes.all()) await expect(box.isDisabled()).resolves.toBe(true);
    await page.getByText("Change the boot source").click();
    for (const name of ["Save selection", "Import now", "Change source"])
      await expect(page.getByRole("button", { name }).isDisabled()).resolves.toBe(true);
    await expect(page.getByLabel("Simplestreams URL").isDisabled()).resolves.toBe(true);
    await expect(toggle.getAttribute("aria-describedby")).resolves.toBe("viewer-note");

    // Re-enable the switch in the page and use it: the command goes out on the viewer's own socket,
    // and the region refuses it.
    const admin = await otherClient(dashboard.region.url, dashboard.region.adminToken);
    try {
      const before = admin.state.settings.autoImport;
      await toggle.evaluate((el: HTMLInputElement) => (el.disabled = false));
      await toggle.click({ force: true });
      const refused = page.getByRole("alert").filter({ hasText: "needs an admin token" });
      await refused.waitFor();
      await expect(refused.textContent()).resolves.toContain('"wall" is a viewer');
      // The switch goes back to what the region holds, which did not change.
      await expect.poll(() => toggle.isChecked()).toBe(before);
      await expect(admin.command("state:get", {})).resolves.toMatchObject({
        snapshot: { settings: { autoImport: before } },
      });

      // Straight over Socket.IO with the viewer's token, the same: forbidden, nothing changes.
      const { socket } = await connect(dashboard.region.url, token);
      try {
        const revision = admin.state.selection.revision;
        await expect(send(socket, "selection:save", { revision, items: [] })).resolves.toMatchObject({
          ok: false,
          error: { code: "forbidden" },
        });
        await expect(send(socket, "import:start", {})).resolves.toMatchObject({
          ok: false,
          error: { code: "forbidden" },
        });
        expect((await admin.command("state:get", {})).snapshot.selection.revision).toBe(revision);
      } finally {
        socket.close();
      }
    } finally {
      admin.close();
    }
  });
});
