import type { Manifest, RackReport, RackState } from "@bootstream/protocol";
import { CommandError } from "@bootstream/protocol";
import type { Logger } from "../../log";
import type { Database } from "../db/database";
import { ImageFileEntity, RackEntity, RackFileEntity, type ImageRow, type RackRow } from "../db/entities";
import type { EventBus } from "../events";
import type { ImageRegistry } from "../services/images";
import { now } from "../clock";
import { buildManifestImages, manifestDigest, manifestFiles } from "./manifest";

type LiveRack = {
  row: RackRow;
  inventory: Set<string>;
  generation: number;
  syncing: boolean;
  progress: RackReport["progress"];
};

/**
 * What each rack holds, and from that each image's `racks: { synced, total }`.
 *
 * Only racks that are online count. A rack that goes away stops holding images back: its images
 * still read "rack-synced" once every rack that is still there has them, and it is shown offline
 * (with when it was last seen) until it returns or an admin forgets it with rack:remove. Waiting
 * for a dead rack would leave every image "waiting" forever, which tells a NOC nothing.
 */
export class RackRegistry {
  private readonly racks = new Map<string, LiveRack>();
  private current: Manifest = { generation: 0, images: [] };
  private digest = "";
  /** Per image in the manifest: the version it was built from and that version's files. */
  private imageFiles = new Map<string, { version: string; files: Set<string> }>();
  /** Files of every manifest sent since all online racks last held the current one. */
  private readonly pinnedFiles = new Set<string>();
  private onManifest: (manifest: Manifest) => void = () => undefined;
  private reports: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly bus: EventBus,
    private readonly images: ImageRegistry,
    private readonly log: Logger,
    /** Called when racks caught up, so files only they were pinning can go. */
    private readonly onCaughtUp: () => void,
  ) {}

  async load(): Promise<void> {
    const rows = await this.db.manager.find(RackEntity);
    const files = await this.db.manager.find(RackFileEntity);
    for (const row of rows) {
      // No socket is connected yet: every rack starts offline until it says hello.
      this.racks.set(row.name, {
        row: { ...row, online: false },
        inventory: new Set(),
        generation: 0,
        syncing: false,
        progress: null,
      });
    }
    for (const file of files) this.racks.get(file.rackName)?.inventory.add(file.sha256);
    // A crash left some marked online; nothing is connected yet. (TypeORM refuses empty criteria.)
    if (rows.some((r) => r.online))
      await this.db.write((m) => m.update(RackEntity, { online: true }, { online: false }));
    this.images.setRackCounts((image) => this.counts(image));
    await this.refreshManifest();
  }

  setManifestListener(listener: (manifest: Manifest) => void): void {
    this.onManifest = listener;
  }

  get manifest(): Manifest {
    return this.current;
  }

  pinned(): ReadonlySet<string> {
    return this.pinnedFiles;
  }

  states(): RackState[] {
    return [...this.racks.values()].map((rack) => this.toState(rack));
  }

  private online(): LiveRack[] {
    return [...this.racks.values()].filter((rack) => rack.row.online);
  }

  private counts(image: ImageRow): { synced: number; total: number; syncing: number } {
    const online = this.online();
    const entry = this.imageFiles.get(image.id);
    // Right after a version switch the manifest is not rebuilt yet: nobody holds the new version.
    if (!entry || entry.version !== image.version || image.state !== "synced") {
      return { synced: 0, total: online.length, syncing: 0 };
    }
    const holding = online.filter((rack) => holdsAll(rack.inventory, entry.files));
    const pulling = online.filter((rack) => rack.syncing && !holding.includes(rack));
    return { synced: holding.length, total: online.length, syncing: pulling.length };
  }

  private toState(rack: LiveRack): RackState {
    const held = [...this.imageFiles.values()].filter((entry) =>
      holdsAll(rack.inventory, entry.files),
    ).length;
    return {
      name: rack.row.name,
      online: rack.row.online,
      lastSync: rack.row.lastSync,
      imagesSynced: held,
      imagesTotal: this.imageFiles.size,
      error: rack.row.error,
      syncing: rack.syncing,
      progress: rack.syncing ? rack.progress : null,
    };
  }

  /** Re-reads which images racks must hold; a change makes a new manifest generation. */
  async refreshManifest(): Promise<void> {
    const synced = this.images.all().filter((image) => image.state === "synced");
    const files = synced.length ? await this.db.manager.find(ImageFileEntity) : [];
    const images = buildManifestImages(synced, files);
    const digest = manifestDigest(images);
    if (digest === this.digest) return;
    this.digest = digest;
    this.current = { generation: this.current.generation + 1, images };
    this.imageFiles = new Map(
      images.map((image) => [
        image.id,
        { version: image.version, files: new Set(image.files.map((f) => f.sha256)) },
      ]),
    );
    for (const sha of manifestFiles(this.current)) this.pinnedFiles.add(sha);
    this.onManifest(this.current);
    this.announceAll();
    // With no rack online (or none yet) nobody is pulling the old generation: no pin is needed.
    this.checkCaughtUp();
  }

  async connected(name: string): Promise<void> {
    const at = now();
    const existing = this.racks.get(name);
    const row: RackRow = existing
      ? { ...existing.row, online: true, lastSeen: at }
      : { name, firstSeen: at, lastSeen: at, online: true, lastSync: null, error: null };
    await this.db.write((m) => m.save(RackEntity, row));
    this.racks.set(
      name,
      existing
        ? { ...existing, row }
        : { row, inventory: new Set(), generation: 0, syncing: false, progress: null },
    );
    this.log.info({ rack: name }, existing ? "rack reconnected" : "rack registered");
    this.announceAll();
  }

  async disconnected(name: string): Promise<void> {
    const rack = this.racks.get(name);
    if (!rack) return;
    rack.row = { ...rack.row, online: false, lastSeen: now() };
    rack.syncing = false;
    rack.progress = null;
    await this.db.write((m) => m.save(RackEntity, rack.row));
    this.log.warn({ rack: name }, "rack offline");
    this.announceAll();
    this.checkCaughtUp();
  }

  /** Reports are applied one at a time: two in flight must not both insert the same new files. */
  report(name: string, report: RackReport): Promise<void> {
    const next = this.reports.then(() => this.applyReport(name, report));
    this.reports = next.catch(() => undefined);
    return next;
  }

  private async applyReport(name: string, report: RackReport): Promise<void> {
    const rack = this.racks.get(name);
    if (!rack) return;
    const inventory = new Set(report.inventory);
    const added = [...inventory].filter((sha) => !rack.inventory.has(sha));
    const removed = [...rack.inventory].filter((sha) => !inventory.has(sha));
    rack.row = {
      ...rack.row,
      lastSeen: now(),
      lastSync: report.lastSync ?? rack.row.lastSync,
      error: report.error,
    };
    const wasSyncing = rack.syncing;
    rack.syncing = report.syncing;
    rack.progress = report.progress;
    rack.generation = report.generation;
    // Inventory, or whether the rack is pulling, changes what images say; progress alone only the rack.
    const changed = added.length > 0 || removed.length > 0 || report.syncing !== wasSyncing;
    await this.db.write(async (m) => {
      await m.save(RackEntity, rack.row);
      for (const sha of removed) await m.delete(RackFileEntity, { rackName: name, sha256: sha });
      if (added.length)
        await m.insert(
          RackFileEntity,
          added.map((sha256) => ({ rackName: name, sha256 })),
        );
    });
    rack.inventory = inventory;
    if (changed) this.announceAll();
    else this.announce(rack);
    this.checkCaughtUp();
  }

  async remove(name: string): Promise<void> {
    const rack = this.racks.get(name);
    if (!rack) throw new CommandError("not-found", `no rack named "${name}"`);
    if (rack.row.online)
      throw new CommandError("conflict", `rack "${name}" is online; stop its agent before forgetting it`);
    await this.db.write(async (m) => {
      await m.delete(RackFileEntity, { rackName: name });
      await m.delete(RackEntity, { name });
    });
    this.racks.delete(name);
    this.bus.emit("rack:removed", { name });
    this.images.refreshChanged();
  }

  /** Everyone online holds the current manifest: earlier generations' files need no pin any more. */
  private checkCaughtUp(): void {
    const wanted = manifestFiles(this.current);
    if (!this.online().every((rack) => holdsAll(rack.inventory, wanted))) return;
    if (this.pinnedFiles.size === wanted.size) return;
    this.pinnedFiles.clear();
    for (const sha of wanted) this.pinnedFiles.add(sha);
    this.onCaughtUp();
  }

  /** Tells clients about racks whose state changed (a report that changes nothing says nothing). */
  private announceAll(): void {
    for (const rack of this.racks.values()) this.announce(rack);
    this.images.refreshChanged();
  }

  private announce(rack: LiveRack): void {
    const next = this.toState(rack);
    const told = this.bus.live.racks.get(next.name);
    if (!told || JSON.stringify(told) !== JSON.stringify(next)) this.bus.emit("rack", { rack: next });
  }
}

function holdsAll(inventory: ReadonlySet<string>, files: ReadonlySet<string>): boolean {
  for (const sha of files) if (!inventory.has(sha)) return false;
  return true;
}
