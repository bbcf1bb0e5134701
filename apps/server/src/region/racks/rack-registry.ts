import type { AuditEntry, ImageState, Manifest, RackReport, RackState } from "@bootstream/protocol";
import { CommandError, parseManifest } from "@bootstream/protocol";
import type { Logger } from "../../log";
import type { Database } from "../db/database";
import type { ImageRow, RackRow } from "../db/entities";
import { Repositories, type AuditNote } from "../db/repositories";
import type { EventBus } from "../events";
import type { ImageRegistry } from "../services/images";
import { now } from "../clock";
import type { InternalEvents } from "../internal-events";
import { buildManifestImages, manifestDigest, manifestFiles } from "./manifest";

/** Per rack, at most one report is applied per this interval; what comes between replaces what waits. */
export const RACK_REPORT_INTERVAL_MS = 250;
/** A rack's `last_seen` (all a report changes while files download) is written at most this often. */
export const RACK_SEEN_WRITE_MS = 5_000;

type Waiter = { resolve: () => void; reject: (error: unknown) => void };
type PendingReport = { report: RackReport; waiters: Waiter[]; timer: NodeJS.Timeout | null };

type LiveRack = {
  row: RackRow;
  /** The row as last written (lastSeen may run ahead of it by up to RACK_SEEN_WRITE_MS). */
  stored: RackRow;
  inventory: Set<string>;
  generation: number;
  syncing: boolean;
  progress: RackReport["progress"];
  /** A report was applied since the rack connected (until then its stored error is an old one). */
  reported: boolean;
  /** The manifest generation current when its last report was applied. */
  reportedAt: number;
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
  /**
   * Per image in the manifest: the version it was built from, that version's files, and the
   * generation that first sent racks that version.
   */
  private imageFiles = new Map<string, { version: string; files: Set<string>; since: number }>();
  /** Files of every manifest sent since all online racks last held the current one. */
  private readonly pinnedFiles = new Set<string>();
  private reports: Promise<void> = Promise.resolve();
  /** The refresh running now and the one queued behind it (callers meanwhile share the queued one). */
  private refreshRunning: Promise<void> | null = null;
  private refreshQueued: Promise<void> | null = null;
  private readonly pendingReports = new Map<string, PendingReport>();
  private readonly lastApplied = new Map<string, number>();
  private seenTimer: NodeJS.Timeout | null = null;
  private readonly data: Repositories;

  constructor(
    db: Database,
    private readonly bus: EventBus,
    private readonly images: ImageRegistry,
    private readonly log: Logger,
    /** Answers `racks.counts` and `racks.pinned`; tells `manifest.changed`, `racks.caughtUp`. */
    private readonly events: InternalEvents,
  ) {
    this.data = new Repositories(db);
    events.answer("racks.counts", (image) => this.counts(image));
    // The manifest is brought up to date first, so the pins reflect the images as they are now.
    events.answer("racks.pinned", async () => {
      await this.refreshManifest();
      return this.pinnedFiles;
    });
  }

  async load(): Promise<void> {
    const { racks: rows, files } = await this.data.read.racks.all();
    for (const row of rows) {
      // No socket is connected yet: every rack starts offline until it says hello.
      this.racks.set(row.name, {
        row: { ...row, online: false },
        stored: { ...row, online: false },
        inventory: new Set(files.get(row.name)),
        generation: 0,
        syncing: false,
        progress: null,
        reported: false,
        reportedAt: 0,
      });
    }
    // A crash left some marked online; nothing is connected yet.
    if (rows.some((r) => r.online)) await this.data.write((tx) => tx.racks.markAllOffline());
    await this.refreshManifest();
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

  private counts(image: ImageRow): ImageState["racks"] {
    const online = this.online();
    const offline = this.racks.size - online.length;
    const entry = this.imageFiles.get(image.id);
    // Right after a version switch the manifest is not rebuilt yet: nobody holds the new version.
    if (!entry || entry.version !== image.version || image.state !== "synced") {
      return { synced: 0, total: online.length, syncing: 0, offline, failed: 0, error: null };
    }
    // Only what a rack reported since it connected counts: the inventory kept from before (the
    // database's after a restart, whose last report the shutdown may have dropped) can be stale.
    const holding = online.filter((rack) => rack.reported && holdsAll(rack.inventory, entry.files));
    const pulling = online.filter((rack) => rack.syncing && !holding.includes(rack));
    // A rack that reported its last sync failed, neither holding nor pulling the image, failed on it
    // (a sync publishes all of the manifest or nothing, so a failed one leaves the new image out).
    // Its error must be news since the rack was sent this version: an error a rack reported before
    // (another image's, an older manifest's) says nothing of an image it has not tried yet.
    const failing = online
      .filter(
        (rack) =>
          rack.reported &&
          rack.reportedAt >= entry.since &&
          rack.row.error !== null &&
          !rack.syncing &&
          !holding.includes(rack),
      )
      .sort((a, b) => (a.row.name < b.row.name ? -1 : a.row.name > b.row.name ? 1 : 0));
    return {
      synced: holding.length,
      total: online.length,
      syncing: pulling.length,
      offline,
      failed: failing.length,
      error: failing[0]?.row.error ?? null,
    };
  }

  private toState(rack: LiveRack): RackState {
    // As counts(): an online rack holds nothing it has not reported since it connected (an offline
    // one is shown with what it last reported).
    const known = rack.reported || !rack.row.online;
    const held = known
      ? [...this.imageFiles.values()].filter((entry) => holdsAll(rack.inventory, entry.files)).length
      : 0;
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

  /**
   * Re-reads which images racks must hold; a change makes a new manifest generation. One at a time,
   * and a call made while one runs gets a fresh one after it: a slow refresh that read older state can
   * never publish after a newer one (generations only grow, and the last one sent is the newest).
   */
  refreshManifest(): Promise<void> {
    if (this.refreshQueued) return this.refreshQueued;
    const before = this.refreshRunning ?? Promise.resolve();
    const run: Promise<void> = before
      .catch(() => undefined)
      .then(() => {
        this.refreshQueued = null;
        this.refreshRunning = run;
        return this.rebuildManifest();
      })
      .finally(() => {
        if (this.refreshRunning === run) this.refreshRunning = null;
      });
    this.refreshQueued = run;
    return run;
  }

  private async rebuildManifest(): Promise<void> {
    const synced = this.images.all().filter((image) => image.state === "synced");
    const files = synced.length ? await this.data.read.images.files() : [];
    const images = buildManifestImages(synced, files, this.events.ask("store.unservable"));
    const digest = manifestDigest(images);
    if (digest === this.digest) return;
    const next: Manifest = { generation: await this.nextGeneration(), images };
    // The rack's own schema: a manifest a rack would refuse is never sent; the racks keep the last one.
    const checked = parseManifest(next);
    if (!checked.ok) {
      this.log.error({ generation: next.generation }, `manifest not sent: ${checked.error}`);
      return;
    }
    this.digest = digest;
    this.current = next;
    const before = this.imageFiles;
    this.imageFiles = new Map(
      images.map((image) => {
        const kept = before.get(image.id);
        const since = kept?.version === image.version ? kept.since : next.generation;
        return [
          image.id,
          { version: image.version, files: new Set(image.files.map((f) => f.sha256)), since },
        ];
      }),
    );
    for (const sha of manifestFiles(this.current)) this.pinnedFiles.add(sha);
    this.events.emit("manifest.changed", { manifest: this.current });
    this.announceAll();
    // With no rack online (or none yet) nobody is pulling the old generation: no pin is needed.
    this.checkCaughtUp();
  }

  /**
   * The next manifest generation, counted in the database (on PostgreSQL in the lease row, by the
   * leader's fenced write), so generations keep growing across leaders and restarts.
   */
  private nextGeneration(): Promise<number> {
    return this.data.write((tx) => tx.racks.nextManifestGeneration(this.current.generation + 1));
  }

  async connected(name: string): Promise<void> {
    const at = now();
    const existing = this.racks.get(name);
    const row: RackRow = existing
      ? { ...existing.row, online: true, lastSeen: at }
      : { name, firstSeen: at, lastSeen: at, online: true, lastSync: null, error: null };
    await this.data.write((tx) => tx.racks.put(row));
    this.racks.set(
      name,
      existing
        ? { ...existing, row, stored: row, reported: false }
        : {
            row,
            stored: row,
            inventory: new Set(),
            generation: 0,
            syncing: false,
            progress: null,
            reported: false,
            reportedAt: 0,
          },
    );
    this.log.info({ rack: name }, existing ? "rack reconnected" : "rack registered");
    this.announceAll();
  }

  async disconnected(name: string): Promise<void> {
    const rack = this.racks.get(name);
    if (!rack) return;
    this.dropPending(name);
    const row = { ...rack.row, online: false, lastSeen: now() };
    await this.data.write((tx) => tx.racks.put(row));
    rack.row = row;
    rack.stored = row;
    rack.syncing = false;
    rack.progress = null;
    this.log.warn({ rack: name }, "rack offline");
    this.announceAll();
    this.checkCaughtUp();
  }

  /**
   * Reports are applied one at a time (two in flight must not both insert the same new files), and
   * per rack at most one per RACK_REPORT_INTERVAL_MS. A report is the rack's whole state, so one that
   * arrives while another waits replaces it; both are answered when the newer one is applied.
   */
  report(name: string, report: RackReport): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiting = this.pendingReports.get(name);
      if (waiting) {
        waiting.report = report;
        waiting.waiters.push({ resolve, reject });
        return;
      }
      const pending: PendingReport = { report, waiters: [{ resolve, reject }], timer: null };
      this.pendingReports.set(name, pending);
      const wait = (this.lastApplied.get(name) ?? 0) + RACK_REPORT_INTERVAL_MS - Date.now();
      if (wait <= 0) this.applyPending(name, pending);
      else pending.timer = setTimeout(() => this.applyPending(name, pending), wait);
    });
  }

  private applyPending(name: string, pending: PendingReport): void {
    pending.timer = null;
    if (this.pendingReports.get(name) === pending) this.pendingReports.delete(name);
    this.lastApplied.set(name, Date.now());
    const next = this.reports.then(() => this.applyReport(name, pending.report));
    this.reports = next.catch(() => undefined);
    next.then(
      () => pending.waiters.forEach((w) => w.resolve()),
      (error: unknown) => pending.waiters.forEach((w) => w.reject(error)),
    );
  }

  /** A rack that went away: what it sent last no longer matters (it sends its state again on connect). */
  private dropPending(name: string, refusal: Error | null = null): void {
    const pending = this.pendingReports.get(name);
    if (!pending) return;
    if (pending.timer) clearTimeout(pending.timer);
    this.pendingReports.delete(name);
    // Its socket is gone (nobody reads the ack), or the region stops: then say it was not applied.
    pending.waiters.forEach((w) => (refusal ? w.reject(refusal) : w.resolve()));
  }

  private async applyReport(name: string, report: RackReport): Promise<void> {
    const rack = this.racks.get(name);
    if (!rack) return;
    const inventory = new Set(report.inventory);
    const added = [...inventory].filter((sha) => !rack.inventory.has(sha));
    const removed = [...rack.inventory].filter((sha) => !inventory.has(sha));
    const row: RackRow = {
      ...rack.row,
      lastSeen: now(),
      lastSync: report.lastSync ?? rack.row.lastSync,
      error: report.error,
    };
    // Only what changed is written: the inventory and the sync outcome at once; lastSeen (all that
    // changes while a rack downloads) at most every RACK_SEEN_WRITE_MS. Memory changes after the write.
    const rowChanged = row.lastSync !== rack.stored.lastSync || row.error !== rack.stored.error;
    if (rowChanged || added.length > 0 || removed.length > 0) {
      await this.data.write(async (tx) => {
        await tx.racks.put(row);
        await tx.racks.changeInventory(name, added, removed);
      });
      rack.stored = row;
    } else {
      this.scheduleSeenWrite();
    }
    const wasSyncing = rack.syncing;
    // What images were told of this rack's last sync (nothing before its first report).
    const errorBefore = rack.reported ? rack.row.error : null;
    const reportedAtBefore = rack.reportedAt;
    const wasReported = rack.reported;
    rack.row = row;
    rack.syncing = report.syncing;
    rack.progress = report.progress;
    rack.generation = report.generation;
    rack.inventory = inventory;
    rack.reported = true;
    rack.reportedAt = this.current.generation;
    // Inventory, whether the rack is pulling, or whether its last sync failed (and why) changes what
    // images say; progress alone only the rack.
    const changed =
      // Its first since it connected: only now does what it holds count (see counts()).
      !wasReported ||
      added.length > 0 ||
      removed.length > 0 ||
      report.syncing !== wasSyncing ||
      row.error !== errorBefore ||
      // Its error now speaks of images sent since its last report, too.
      (row.error !== null && rack.reportedAt !== reportedAtBefore);
    if (changed) this.announceAll();
    else this.announce(rack);
    this.checkCaughtUp();
  }

  private scheduleSeenWrite(): void {
    if (this.seenTimer) return;
    this.seenTimer = setTimeout(() => {
      this.seenTimer = null;
      this.writeSeen().catch((error: unknown) =>
        this.log.warn({ err: error }, "could not record racks' last seen"),
      );
    }, RACK_SEEN_WRITE_MS);
    this.seenTimer.unref();
  }

  /** Writes the lastSeen of racks whose row ran ahead of the database. */
  async writeSeen(): Promise<void> {
    const behind = [...this.racks.values()].filter((rack) => rack.row.lastSeen !== rack.stored.lastSeen);
    if (behind.length === 0) return;
    const rows = behind.map((rack) => ({ rack, seen: rack.row.lastSeen }));
    await this.data.write(async (tx) => {
      for (const { rack, seen } of rows) await tx.racks.seen(rack.row.name, seen);
    });
    for (const { rack, seen } of rows) rack.stored = { ...rack.stored, lastSeen: seen };
  }

  /** Stops the timers; what lastSeen ran ahead is written (a shutdown loses no more than that). */
  async close(): Promise<void> {
    if (this.seenTimer) clearTimeout(this.seenTimer);
    this.seenTimer = null;
    for (const name of [...this.pendingReports.keys()])
      this.dropPending(name, new Error("the region is stopping; the report was not applied"));
    await this.reports;
    await this.writeSeen().catch((error: unknown) =>
      this.log.warn({ err: error }, "could not record racks' last seen"),
    );
  }

  /** Forgets an offline rack; the command's audit note commits in the same transaction. */
  async remove(name: string, note: AuditNote): Promise<AuditEntry> {
    const rack = this.racks.get(name);
    if (!rack) throw new CommandError("not-found", `no rack named "${name}"`);
    const online = () =>
      new CommandError("conflict", `rack "${name}" is online; stop its agent before forgetting it`);
    if (rack.row.online) throw online();
    const entry = await this.data.write(async (tx) => {
      // Offline is checked again in the statement: a rack that connected meanwhile stays.
      if (!(await tx.racks.removeOffline(name))) throw online();
      return tx.audit.record(note);
    });
    this.racks.delete(name);
    this.bus.emit("rack:removed", { name });
    this.images.refreshChanged();
    return entry;
  }

  /** Everyone online holds the current manifest: earlier generations' files need no pin any more. */
  private checkCaughtUp(): void {
    const wanted = manifestFiles(this.current);
    if (!this.online().every((rack) => rack.reported && holdsAll(rack.inventory, wanted))) return;
    if (this.pinnedFiles.size === wanted.size) return;
    this.pinnedFiles.clear();
    for (const sha of wanted) this.pinnedFiles.add(sha);
    this.events.emit("racks.caughtUp", {});
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
