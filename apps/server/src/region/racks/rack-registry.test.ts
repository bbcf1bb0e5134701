import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Manifest, RackReport } from "@bootstream/protocol";
import { createLogger } from "../../log";
import { Database } from "../db/database";
import { ImageEntity, ImageFileEntity, RackEntity, RackFileEntity, type ImageRow } from "../db/entities";
import { EventBus } from "../events";
import { InternalEvents } from "../internal-events";
import { ImageRegistry } from "../services/images";
import { RackRegistry } from "./rack-registry";

const sha = (c: string) => c.repeat(64);
const NOBLE: ImageRow = {
  id: "ubuntu/noble/amd64",
  os: "ubuntu",
  release: "noble",
  arch: "amd64",
  title: "24.04 LTS",
  version: "20250615",
  targetVersion: null,
  state: "synced",
  bytesTotal: 2,
  bytesDone: 2,
  error: null,
  nextState: null,
  nextBytesTotal: 0,
  nextBytesDone: 0,
  nextError: null,
  warning: null,
  syncedAt: "2026-12-01T00:00:00.000Z",
  updatedAt: "2026-12-01T00:00:00.000Z",
};
const report = (patch: Partial<RackReport> = {}): RackReport => ({
  inventory: [],
  generation: 1,
  syncing: false,
  progress: null,
  lastSync: null,
  error: null,
  ...patch,
});

// Real SQLite in a temp dir, the real registries: only the sockets are left out.
describe("RackRegistry", () => {
  let dir: string;
  let db: Database;
  let images: ImageRegistry;
  let racks: RackRegistry;
  let writes: number;
  let bus: EventBus;
  const manifests: Manifest[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bootstream-racks-"));
    db = await Database.open({ dataDir: dir, databaseUrl: null });
    writes = 0;
    db.observe({ writeSucceeded: () => writes++, writeFailed: () => undefined });
    bus = new EventBus();
    const log = createLogger("silent", "test");
    const internal = new InternalEvents(log);
    images = new ImageRegistry(db, bus, internal);
    await images.load();
    racks = new RackRegistry(db, bus, images, log, internal);
    manifests.length = 0;
    internal.on("manifest.changed", ({ manifest }) => void manifests.push(manifest));
    await racks.load();
  });
  afterEach(async () => {
    await racks.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs two refreshes at once one after the other: generations grow and the last one sent is current", async () => {
    await db.write(async (m) => {
      await m.insert(ImageEntity, NOBLE);
      await m.insert(ImageFileEntity, [
        {
          imageId: NOBLE.id,
          version: NOBLE.version!,
          path: "k",
          sha256: sha("a"),
          size: 1,
          ftype: "boot-kernel",
        },
        {
          imageId: NOBLE.id,
          version: NOBLE.version!,
          path: "s",
          sha256: sha("b"),
          size: 1,
          ftype: "squashfs",
        },
      ]);
    });
    // noble is synced; a refresh starts and reads the image_file rows...
    images.commit([NOBLE]);
    const first = racks.refreshManifest();
    // ...while noble is deselected and a second refresh starts, which needs no read at all.
    images.commit([], [NOBLE.id]);
    const second = racks.refreshManifest();
    await Promise.all([first, second]);

    const generations = manifests.map((m) => m.generation);
    expect(generations).toEqual([...generations].sort((a, b) => a - b));
    expect(new Set(generations).size).toBe(generations.length);
    // Without serialising, the slower first refresh published noble after the second had dropped it.
    expect(manifests.at(-1)!.images).toEqual([]);
    expect(racks.manifest.images).toEqual([]);
  });

  it("writes a report's inventory at once, coalesces lastSeen and progress, and changes memory after the write", async () => {
    await racks.connected("rack-1");
    const afterConnect = writes;

    // Progress-only reports: answered, shown, but no write per report; the last one stands.
    const progress = Array.from({ length: 20 }, (_, i) =>
      racks.report("rack-1", report({ syncing: true, progress: { bytesDone: i, bytesTotal: 100 } })),
    );
    await Promise.all(progress);
    expect(writes).toBe(afterConnect);
    expect(racks.states()[0]).toMatchObject({ syncing: true, progress: { bytesDone: 19, bytesTotal: 100 } });

    // A report that changes the inventory is written before it is answered.
    await racks.report("rack-1", report({ inventory: [sha("a")], lastSync: "2026-12-01T01:00:00.000Z" }));
    expect(writes).toBe(afterConnect + 1);
    const files = await db.manager.find(RackFileEntity, { where: { rackName: "rack-1" } });
    expect(files.map((f) => f.sha256)).toEqual([sha("a")]);

    // lastSeen alone ran ahead of the database; it is written later (here: on close), once.
    await racks.report("rack-1", report({ inventory: [sha("a")], lastSync: "2026-12-01T01:00:00.000Z" }));
    expect(writes).toBe(afterConnect + 1);
    const seen = racks.states();
    await racks.writeSeen();
    expect(writes).toBe(afterConnect + 2);
    const row = await db.manager.findOneByOrFail(RackEntity, { name: "rack-1" });
    expect(row.lastSync).toBe("2026-12-01T01:00:00.000Z");
    expect(seen).toHaveLength(1);

    // A write that fails changes nothing in memory: the report is refused, the old inventory stands.
    await db.source.query("PRAGMA query_only = ON");
    try {
      await expect(
        racks.report("rack-1", report({ inventory: [sha("a"), sha("b")], error: "disk" })),
      ).rejects.toThrow();
    } finally {
      await db.source.query("PRAGMA query_only = OFF");
    }
    expect(racks.states()[0]).toMatchObject({ error: null });
    await racks.report("rack-1", report({ inventory: [sha("a"), sha("b")] }));
    const after = await db.manager.find(RackFileEntity, { where: { rackName: "rack-1" } });
    expect(after.map((f) => f.sha256).sort()).toEqual([sha("a"), sha("b")]);
  });

  it("applies at most one report per interval per rack; the newest of those waiting wins", async () => {
    await racks.connected("rack-1");
    let rackEvents = 0;
    bus.subscribe((event) => {
      if (event === "rack") rackEvents++;
    });
    const applied: number[] = [];
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        racks
          .report("rack-1", report({ syncing: true, progress: { bytesDone: i, bytesTotal: 50 } }))
          .then(() => applied.push(i)),
      ),
    );
    expect(answers).toHaveLength(50);
    // The first is applied at once, the 49 behind it as one (the newest), not 49 times.
    expect(racks.states()[0]!.progress).toEqual({ bytesDone: 49, bytesTotal: 50 });
    expect(applied).toHaveLength(50);
    expect(rackEvents).toBe(2);
  });
  type Counts = NonNullable<ReturnType<typeof bus.live.images.get>>["racks"];
  /** Resolves once clients were told these counts of the image (image events are coalesced). */
  const toldOf = (id: string, expected: Counts) =>
    new Promise<void>((resolve, reject) => {
      const told = () => bus.live.images.get(id)?.racks;
      if (isDeepStrictEqual(told(), expected)) return resolve();
      const timer = setTimeout(() => {
        off();
        reject(new Error(`told ${JSON.stringify(told())}, not ${JSON.stringify(expected)}`));
      }, 5_000);
      const off = bus.subscribe((event) => {
        if (event !== "image" || !isDeepStrictEqual(told(), expected)) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  const none: Counts = { synced: 0, total: 1, syncing: 0, offline: 0, failed: 0, error: null };

  it("counts the racks that failed to sync an image, with the first one's error, and tells clients", async () => {
    await db.write(async (m) => {
      await m.insert(ImageEntity, NOBLE);
      await m.insert(ImageFileEntity, {
        imageId: NOBLE.id,
        version: NOBLE.version!,
        path: "k",
        sha256: sha("a"),
        size: 1,
        ftype: "boot-kernel",
      });
    });
    images.commit([NOBLE]);
    await racks.refreshManifest();
    await racks.connected("rack-2");
    await racks.connected("rack-1");
    // What clients were told of noble's racks (the `image` events folded into the live state); image
    // events are coalesced, so each check waits for the event that says it (or fails saying what was).
    const toldBecomes = (expected: Counts) => toldOf(NOBLE.id, expected);
    const counts = (patch: Partial<Counts>) => ({
      synced: 0,
      total: 2,
      syncing: 0,
      offline: 0,
      failed: 0,
      error: null,
      ...patch,
    });
    await toldBecomes(counts({}));

    // A failed sync changes neither the inventory nor `syncing`: the error alone must reach the image.
    await racks.report("rack-2", report({ error: "rack-2: ENOSPC" }));
    await toldBecomes(counts({ failed: 1, error: "rack-2: ENOSPC" }));
    await racks.report("rack-1", report({ error: "rack-1: connect ECONNREFUSED" }));
    // The first error is the first failing rack's by name, whichever reported first.
    await toldBecomes(counts({ failed: 2, error: "rack-1: connect ECONNREFUSED" }));
    await racks.report("rack-1", report({ error: "rack-1: sha256 mismatch" }));
    await toldBecomes(counts({ failed: 2, error: "rack-1: sha256 mismatch" }));

    // Pulling it again, a rack has not failed on it (its last error stands until the sync ends).
    await racks.report("rack-1", report({ syncing: true, error: "rack-1: sha256 mismatch" }));
    await toldBecomes(counts({ syncing: 1, failed: 1, error: "rack-2: ENOSPC" }));
    // Holding it, nor has a rack whose sync failed on something else later.
    await racks.report("rack-1", report({ inventory: [sha("a")], error: "rack-1: later trouble" }));
    await toldBecomes(counts({ synced: 1, failed: 1, error: "rack-2: ENOSPC" }));

    // A rack that went away and came back has not reported yet: its stored error is an old one.
    await racks.disconnected("rack-2");
    await toldBecomes(counts({ synced: 1, total: 1, offline: 1 }));
    await racks.connected("rack-2");
    await toldBecomes(counts({ synced: 1 }));
    await racks.report("rack-2", report({ error: null }));
    await toldBecomes(counts({ synced: 1 }));

    // The racks table agrees: offline, a rack shows what it last reported; back, nothing until it reports.
    const synced = (name: string) => racks.states().find((r) => r.name === name)!.imagesSynced;
    await racks.disconnected("rack-1");
    expect(synced("rack-1")).toBe(1);
    await toldBecomes(counts({ total: 1, offline: 1 }));
    await racks.connected("rack-1");
    expect(synced("rack-1")).toBe(0);
    await toldBecomes(counts({}));
    // Its first report holds what it held before: nothing changed but that it now counts.
    await racks.report("rack-1", report({ inventory: [sha("a")] }));
    expect(synced("rack-1")).toBe(1);
    await toldBecomes(counts({ synced: 1 }));
  });

  it("does not blame a new image on an error a rack reported before it was sent that image", async () => {
    const ARM: ImageRow = { ...NOBLE, id: "ubuntu/noble/arm64", arch: "arm64" };
    const fileOf = (image: ImageRow, c: string) => ({
      imageId: image.id,
      version: image.version!,
      path: `${image.arch}/k`,
      sha256: sha(c),
      size: 1,
      ftype: "boot-kernel",
    });
    await db.write(async (m) => {
      await m.insert(ImageEntity, NOBLE);
      await m.insert(ImageFileEntity, fileOf(NOBLE, "a"));
    });
    images.commit([NOBLE]);
    await racks.refreshManifest();
    await racks.connected("rack-1");
    // rack-1 fails on noble (generation 1).
    await racks.report("rack-1", report({ error: "rack-1: ENOSPC" }));
    await toldOf(NOBLE.id, { ...none, failed: 1, error: "rack-1: ENOSPC" });

    // arm64 is synced and sent in generation 2: rack-1 has not tried it, so it is waiting, not failed.
    await db.write(async (m) => {
      await m.insert(ImageEntity, ARM);
      await m.insert(ImageFileEntity, fileOf(ARM, "b"));
    });
    images.commit([ARM]);
    await racks.refreshManifest();
    expect(manifests.at(-1)!.images.map((i) => i.id)).toContain(ARM.id);
    // What the next image event tells (the live state may still hold the one before the manifest).
    const now = (image: ImageRow) => images.toState(images.get(image.id)!).racks;
    expect(now(ARM)).toEqual(none);
    expect(now(NOBLE)).toEqual({ ...none, failed: 1, error: "rack-1: ENOSPC" });

    // Its next report, the same error and no sync between (it cannot even start one): now it speaks of arm64 too.
    await racks.report("rack-1", report({ generation: 1, error: "rack-1: ENOSPC" }));
    await toldOf(ARM.id, { ...none, failed: 1, error: "rack-1: ENOSPC" });
  });
});
