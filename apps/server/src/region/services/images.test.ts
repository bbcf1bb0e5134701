import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { newImageRecord } from "@bootstream/images";
import { createLogger } from "../../log";
import { Database } from "../db/database";
import { ImageEntity, type ImageRow } from "../db/entities";
import { EventBus } from "../events";
import { InternalEvents } from "../internal-events";
import { ImageRegistry } from "./images";

const T0 = "2026-12-01T00:00:00.000Z";
const row = (release: string, patch: Partial<ImageRow> = {}): ImageRow => ({
  ...newImageRecord(`ubuntu/${release}/amd64`, { os: "ubuntu", release, arch: "amd64", title: release }, T0),
  ...patch,
});

// Real SQLite in a temp dir (memory is loaded from it) and the real bus: what a selection save's
// reconcile leaves in memory and tells clients.
describe("ImageRegistry.reconcile", () => {
  let dir: string;
  let db: Database;
  let images: ImageRegistry;
  let internal: InternalEvents;
  const sent: { event: string; id: string; bytesDone?: number }[] = [];
  const committed: { changed: readonly string[]; removed: readonly string[] }[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bootstream-images-"));
    db = await Database.open({ dataDir: dir, databaseUrl: null });
    const bus = new EventBus();
    internal = new InternalEvents(createLogger("silent", "test"));
    internal.answer("racks.counts", () => ({
      synced: 0,
      total: 0,
      syncing: 0,
      offline: 0,
      failed: 0,
      error: null,
    }));
    internal.on("image.committed", (change) => void committed.push(change));
    bus.subscribe((event, payload) => {
      if (event === "image:removed") sent.push({ event, id: (payload as { id: string }).id });
      if (event === "image") {
        const { image } = payload as { image: { id: string; bytesDone: number } };
        sent.push({ event, id: image.id, bytesDone: image.bytesDone });
      }
    });
    images = new ImageRegistry(db, bus, internal);
    // Memory holds noble (downloading, its progress only in memory) and jammy.
    await db.write(async (m) => {
      await m.insert(ImageEntity, [row("noble", { state: "downloading", bytesTotal: 100 }), row("jammy")]);
    });
    await images.load();
    images.progress("ubuntu/noble/amd64", 40);
    sent.length = 0;
    committed.length = 0;
  });
  afterEach(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("drops what the table lacks, adds what memory lacks, keeps known rows' progress", async () => {
    // The save removed jammy and added focal; a save before it (not in memory yet) added oracular.
    const focal = row("focal");
    const table = [row("noble", { state: "downloading", bytesTotal: 100 }), focal, row("oracular")];
    images.reconcile(table, [focal]);
    expect(
      images
        .all()
        .map((r) => r.id)
        .sort(),
    ).toEqual(["ubuntu/focal/amd64", "ubuntu/noble/amd64", "ubuntu/oracular/amd64"]);
    // noble keeps the bytes memory had (the table row has none yet): no event for it.
    expect(images.get("ubuntu/noble/amd64")?.bytesDone).toBe(40);
    expect(sent).toEqual([
      { event: "image:removed", id: "ubuntu/jammy/amd64" },
      { event: "image", id: "ubuntu/focal/amd64", bytesDone: 0 },
      { event: "image", id: "ubuntu/oracular/amd64", bytesDone: 0 },
    ]);
    await internal.settle();
    expect(committed).toEqual([
      { changed: ["ubuntu/focal/amd64", "ubuntu/oracular/amd64"], removed: ["ubuntu/jammy/amd64"] },
    ]);
  });

  it("an image removed by an earlier save that memory still holds goes too", async () => {
    // This save changed nothing of jammy; a save that committed before it removed it.
    images.reconcile([row("noble", { state: "downloading", bytesTotal: 100 })], []);
    expect(images.get("ubuntu/jammy/amd64")).toBeUndefined();
    expect(sent).toEqual([{ event: "image:removed", id: "ubuntu/jammy/amd64" }]);
    await internal.settle();
    expect(committed).toEqual([{ changed: [], removed: ["ubuntu/jammy/amd64"] }]);
  });

  it("an image deselected and selected again starts afresh", async () => {
    const fresh = row("noble");
    images.reconcile([fresh, row("jammy")], [fresh]);
    expect(images.get("ubuntu/noble/amd64")).toMatchObject({ state: "queued", bytesDone: 0 });
    // (Its event is coalesced behind the progress event of a moment ago; the commit says it.)
    await internal.settle();
    expect(committed).toEqual([{ changed: ["ubuntu/noble/amd64"], removed: [] }]);
  });

  it("a save that changes nothing says nothing", async () => {
    images.reconcile([row("noble", { state: "downloading", bytesTotal: 100 }), row("jammy")], []);
    expect(sent).toEqual([]);
    await internal.settle();
    expect(committed).toEqual([]);
  });
});
