import type { RegionContext } from "./context";
import type { RackNamespace } from "./racks/rack-namespace";
import type { RackHub } from "./racks/rack-hub";
import { DEFAULT_VERIFY_SCHEDULE } from "../config";
import { Scheduler } from "./scheduler";

/**
 * What only the leading region node runs: the importer, the hourly schedule and the rack namespace.
 * Starting it (re)loads the registries from the database, so a follower that takes over starts from
 * what the old leader committed, resumes its unfinished import and tells every client.
 */
export class Engine {
  private scheduler: Scheduler | null = null;
  /** Starts and stops run one after the other: a start is a no-op while running (no double schedule). */
  private transition: Promise<void> = Promise.resolve();
  running = false;

  constructor(
    private readonly region: RegionContext,
    private readonly rackNamespace: RackNamespace,
    private readonly hub: RackHub,
  ) {}

  start(): Promise<void> {
    return this.serially(() => (this.running ? Promise.resolve() : this.begin()));
  }

  private serially(step: () => Promise<void>): Promise<void> {
    const next = this.transition.then(step);
    this.transition = next.catch(() => undefined);
    return next;
  }

  private async begin(): Promise<void> {
    const { region } = this;
    const { importer, images, racks, selection, source, settings, bus, log, config } = region;
    await source.reload();
    await selection.load();
    await images.load();
    await racks.load();
    // A new term: racks are known to be connected once they (or the follower they are on) say so.
    this.hub.reset();
    const current = await settings.get();
    importer.setBandwidthLimit(current.bandwidthLimit);
    importer.setImportWindow(current.importWindow);
    bus.seed((live) => {
      live.settings = current;
      live.source = source.state();
      live.selection = selection.get();
      live.setImages(images.states());
      live.setRacks(racks.states());
    });
    const resume = await importer.recover();
    this.running = true;
    // Racks still connected to this node (it followed, or led before) never say hello again:
    // register them afresh (load() marked every rack offline) and send them the manifest. Racks on
    // the followers are registered by the followers' next beat (cluster/rack-relay.ts).
    for (const socket of this.rackNamespace.sockets.values()) {
      const name = (socket.data as { name?: string }).name;
      if (!name) continue;
      await this.hub.hello(name, this.hub.self, socket.id);
    }
    // Clients that followed an old leader may hold stale rows: a fresh snapshot for everyone.
    await region.sessions.resnapshot();

    this.scheduler?.stop();
    this.scheduler = new Scheduler(log);
    this.scheduler.every("region-import", config.importSchedule, async () => {
      // The schedule always looks: auto-import on imports; off only marks newer versions available.
      if ((await settings.get()).autoImport) importer.request("schedule");
      else importer.requestCheck();
    });
    // The store is re-hashed on a schedule too (weekly by default), repairing what it finds: a file
    // gone bad on disk is taken out of service and fetched again without waiting for an admin.
    this.scheduler.every("region-verify", config.verifySchedule ?? DEFAULT_VERIFY_SCHEDULE, () =>
      region.verifier.scheduled(),
    );
    // A crash mid-import resumes it (a scheduled one when its window is open); a fresh region reads its source and imports the default selection.
    if (resume) importer.request(resume);
    else if (!(await selection.initialised()) && current.autoImport) importer.request("selection");
  }

  notifyRacks(): void {
    if (this.running) this.rackNamespace.emit("sync:now");
  }

  /**
   * Stepping down: the schedule stops and the import is aborted but left unfinished in the
   * database, so whichever node leads next resumes it. This node may lead again later.
   */
  halt(): Promise<void> {
    return this.serially(async () => {
      this.scheduler?.stop();
      this.scheduler = null;
      this.running = false;
      await this.region.importer.halt();
    });
  }

  async stop(): Promise<void> {
    await this.serially(async () => {
      this.scheduler?.stop();
      this.scheduler = null;
      this.running = false;
    });
    await this.region.importer.close();
    await this.region.racks.close();
  }
}
