import {
  BandwidthLimiter,
  ContentStore,
  DownloadError,
  IMPORT_PAUSED,
  IMPORT_STOPPED,
  createDownloadAgent,
  downloadFile,
  importFailed,
  importStopped,
  isAbortError,
  notOffered,
  pending,
  planApplied,
  planImport,
  recovered,
  resolveItemUrl,
  runPool,
  unreferencedFiles,
  versionOffered,
  versionSwitched,
  describeWindow,
  importToResume,
  mayStartImport,
  pausesAtWindowEnd,
  type ImagePlan,
  type ImportWindow,
  type ImageRecord,
  type Plan,
  type PlannedFile,
  type SourceContents,
} from "@bootstream/images";
import { IDLE_IMPORT, type AuditEntry, type ImportState, type ImportTrigger } from "@bootstream/protocol";
import type { Dispatcher } from "undici";
import type { Logger } from "../../log";
import type { Database } from "../db/database";
import { Repositories, type AuditNote } from "../db/repositories";
import type { EventBus } from "../events";
import type { ImageRegistry } from "../services/images";
import type { SelectionService } from "../services/selection";
import type { SourceService } from "../services/source";
import { now, type WindowClock } from "../clock";
import { releaseAfterRun, youngGarbageBound } from "../../memory";
import { copyLocalFile } from "./local-copy";
import type { InternalEvents } from "../internal-events";
import { databaseConnectionLost } from "../db/connection-lost";
import { FencedError } from "../cluster/leadership";
import { WindowGate } from "./window-gate";

export type ImporterOptions = {
  concurrency: number;
  /** DOWNLOAD_MIN_RATE: a slower transfer is cut and retried (downloadFile's default otherwise). */
  minRate?: { bytesPerSecond: number; windowMs: number };
  /** Asked for the files racks still pull (`racks.pinned`); told `import.finished`. */
  events?: InternalEvents;
  /**
   * On a cluster: tried before upstream for every file (a peer region node that holds it verified);
   * false sends the file to upstream, which resumes whatever the peer's attempt left in the `.partial`.
   */
  peers?: {
    fetchVerified(
      file: { sha256: string; size: number },
      signal: AbortSignal,
      onProgress: (delta: number) => void,
    ): Promise<boolean>;
  };
  /** The import window's clock (BOOTSTREAM_TEST_CLOCK in tests); the system clock otherwise. */
  clock?: WindowClock;
  /**
   * On a cluster (PostgreSQL): told, once per run, that the run met a lost database connection or
   * the leader lease's fence. The run stops at once and is left unfinished in the database, like a
   * shutdown, so whichever node leads next resumes it; the caller steps down. Without it (SQLite) a
   * database error ends the run with that error.
   */
  onDatabaseLost?: (reason: string) => void;
};

/** idle: nothing runs; running: an import (or a check, or GC) runs; stopping: a stop aborts it. */
export type ImporterPhase = "idle" | "running" | "stopping";

/**
 * The internal setting that says a scheduled import waits for the import window (asked, or paused,
 * while it was closed): it survives a restart and a change of leader, so the import runs at the
 * next window either way.
 */
export const WAITING_FOR_WINDOW = "import.waitingForWindow";

/** How often what a refused write left unrecorded is tried again. */
export const RETRY_MS = 1000;

/** Settles the images an ended run left pending: stopped → queued, failed → failed with the reason. */
type Settle = { stopped: boolean; why: string };

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** A command's audit note waiting to be recorded in the transaction of the change it asked for. */
type PendingNote = {
  note: AuditNote;
  resolve: (entry: AuditEntry) => void;
  reject: (error: unknown) => void;
};

function pendingNote(note: AuditNote): { pending: PendingNote; recorded: Promise<AuditEntry> } {
  let pending!: PendingNote;
  const recorded = new Promise<AuditEntry>((resolve, reject) => (pending = { note, resolve, reject }));
  return { pending, recorded };
}

/** Whether an error (or its cause) is "no space left on device". */
function noSpace(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    if ((e as { code?: unknown }).code === "ENOSPC") return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const asPlanned = (image: ImagePlan) => ({
  version: image.version,
  title: image.title,
  bytesTotal: image.bytesTotal,
  bytesStored: image.bytesStored,
});

/**
 * Runs imports one at a time: read the source, plan, download what is missing, switch each image to
 * its new version once every file is verified, drop what nothing needs. Work waits in a queue (one
 * import, one check, one garbage collection at most): a request while an import runs makes it run
 * once more when it ends, so selections saved mid-import are never lost. Each transition of an
 * image is the domain's (`lifecycle.ts`); this class only persists and announces them.
 */
export class Importer {
  private loop: Promise<void> | null = null;
  private phase: ImporterPhase = "idle";
  private again: ImportTrigger | null = null;
  private checkWanted = false;
  private gcWanted = false;
  private abort: AbortController | null = null;
  /** Resolves when the import running now has ended (recorded and announced). */
  private runEnded: Promise<void> | null = null;
  private stoppedBy: string | null = null;
  /** Why the running scheduled import is being paused (its window closed); null otherwise. */
  private pausedWhy: string | null = null;
  /** A scheduled import waits for the window to open (asked, or paused, while it was closed). */
  private deferred = false;
  /** The writes of `deferred` (WAITING_FOR_WINDOW), in order; close() waits for them. */
  private deferredWrites: Promise<void> = Promise.resolve();
  /** A saved selection joined the running import: it runs on past the window's end. */
  private selectionJoined = false;
  /** settings.importWindow: scheduled imports run only while it is open. */
  private readonly window: WindowGate;
  private closing = false;
  private current: ImportState = { ...IDLE_IMPORT };
  private readonly dispatcher: Dispatcher;
  /** settings.bandwidthLimit: one cap shared by all of an import's downloads (local copies are not capped). */
  private readonly bandwidth = new BandwidthLimiter(null);
  /** Every download's bytes, for the minor collections that bound the buffers' garbage. */
  private readonly received = youngGarbageBound();
  private readonly data: Repositories;
  /** import:start's note, recorded with the run's first row. */
  private startNote: PendingNote | null = null;
  /** import:stop's note, recorded with the run's last row. */
  private stopNote: PendingNote | null = null;
  /**
   * What ended runs could not write because the database refused (full disk): their end, and the
   * images they left pending. Retried every RETRY_MS until it is written; a later run's plan
   * supersedes the images part.
   */
  private readonly backlog: {
    runs: { id: number; finishedAt: string; error: string | null }[];
    settle: Settle | null;
  } = { runs: [], settle: null };
  private backlogTimer: NodeJS.Timeout | null = null;
  /** While a run downloads, a selection saved meanwhile joins it (planned from what it read). */
  private joinable = false;
  private joinWanted = false;
  /** Why the running import stopped: the database connection or the lease went away (see onDatabaseLost). */
  private lost: string | null = null;
  /**
   * An import wanted when this node stopped leading that has no unfinished row to say so (queued
   * behind the run, or a run whose first write failed): run if this node leads again.
   */
  private wanted: ImportTrigger | null = null;

  constructor(
    db: Database,
    private readonly bus: EventBus,
    private readonly log: Logger,
    private readonly store: ContentStore,
    private readonly source: SourceService,
    private readonly selection: SelectionService,
    private readonly images: ImageRegistry,
    private readonly options: ImporterOptions,
  ) {
    this.dispatcher = createDownloadAgent({ connections: options.concurrency });
    this.data = new Repositories(db);
    this.window = new WindowGate(
      { opened: () => this.windowOpened(), closed: () => this.windowClosed() },
      options.clock,
    );
  }

  /**
   * settings.importWindow, applied at once: a scheduled import running when the window closes is
   * paused (its `.partial` files kept) and resumes when it opens again. Manual and selection
   * imports run whatever the window.
   */
  setImportWindow(window: ImportWindow | null): void {
    if (JSON.stringify(this.window.current) !== JSON.stringify(window))
      this.log.info({ importWindow: window }, "import window set");
    this.window.set(window);
  }

  private windowOpened(): void {
    this.log.info({ importWindow: this.window.current }, "import window opened");
    if (this.deferred) this.request("schedule");
  }

  /** Sets `deferred` and records it (WAITING_FOR_WINDOW), one write after the other. */
  private waitForWindow(waiting: boolean): void {
    if (this.deferred === waiting) return;
    this.deferred = waiting;
    this.deferredWrites = this.deferredWrites
      .then(() =>
        this.data.write((tx) =>
          waiting ? tx.settings.set(WAITING_FOR_WINDOW, "schedule") : tx.settings.remove(WAITING_FOR_WINDOW),
        ),
      )
      .catch((error: unknown) =>
        this.log.error(
          { err: error, waiting },
          "could not record whether a scheduled import waits for the window",
        ),
      );
  }

  private windowClosed(): void {
    const window = this.window.current;
    this.log.info(
      { importWindow: window, opensAt: this.window.opensAt?.toISOString() },
      "import window closed",
    );
    if (this.again === "schedule") {
      this.again = null;
      this.waitForWindow(true);
    }
    if (!this.current.running || !this.abort || this.pausedWhy) return;
    const run = { trigger: this.current.trigger ?? "manual", selectionJoined: this.selectionJoined };
    if (!pausesAtWindowEnd(run)) {
      if (run.trigger === "schedule")
        this.log.info("import window closed; the running import carries on: a saved selection joined it");
      return;
    }
    this.waitForWindow(true);
    this.pausedWhy = `${IMPORT_PAUSED}the import window (${describeWindow(window)}) closed; it resumes when the window opens${
      this.window.opensAt ? ` at ${this.window.opensAt.toISOString()}` : ""
    }`;
    this.phase = "stopping";
    this.abort.abort(new Error(this.pausedWhy));
  }

  /** Applies at once, to the downloads running now as to later ones. */
  setBandwidthLimit(bytesPerSecond: number | null): void {
    if (bytesPerSecond === this.bandwidth.bytesPerSecond) return;
    this.bandwidth.setLimit(bytesPerSecond);
    this.log.info({ bandwidthLimit: bytesPerSecond }, "bandwidth limit set");
  }

  get state(): ImportState {
    return this.current;
  }

  get status(): ImporterPhase {
    return this.phase;
  }

  /**
   * After a crash: images caught mid-download go back to queued, and an import that never finished
   * is reported as interrupted. Returns its trigger so the caller can resume it, or "schedule" when
   * a scheduled import was waiting for the window (`importToResume`).
   */
  async recover(): Promise<ImportTrigger | null> {
    const at = now();
    await this.images.transition(
      this.images.all().map((row) => row.id),
      (row) => recovered(row, at),
    );
    const waiting = (await this.data.read.settings.getInternal(WAITING_FOR_WINDOW)) !== null;
    // Recorded already: set in memory only, so the next window (or request) clears it.
    this.deferred = waiting;
    const unfinished = await this.data.read.runs.unfinished();
    const wanted = this.wanted;
    this.wanted = null;
    this.lost = null;
    if (unfinished.length > 0)
      await this.data.write((tx) =>
        tx.runs.interrupt(
          unfinished.map((run) => run.id),
          now(),
          "interrupted: the region node running it stopped, or lost its database or the lead; resumed",
        ),
      );
    // The last import's outcome is shown after a restart as before it, not "no import has run yet".
    const latest = await this.data.read.runs.latest();
    if (latest !== null && latest.finishedAt !== null && !this.current.running)
      this.announce({
        running: false,
        trigger: latest.trigger as ImportTrigger,
        startedAt: latest.startedAt,
        finishedAt: latest.finishedAt,
        error: latest.error,
      });
    const last = unfinished.length ? ((unfinished.at(-1)!.trigger as ImportTrigger) ?? "manual") : wanted;
    return importToResume(last, waiting);
  }

  request(trigger: ImportTrigger): ImportState {
    if (this.closing) return this.current;
    if (!mayStartImport(trigger, this.window.open)) {
      if (!this.deferred)
        this.log.info(
          { opensAt: this.window.opensAt?.toISOString() },
          "scheduled import waits for the import window",
        );
      this.waitForWindow(true);
      return this.current;
    }
    // The scheduled import owed since the window was closed is asked for now.
    if (trigger === "schedule") this.waitForWindow(false);
    if (trigger === "selection" && this.joinable && this.phase === "running") {
      // Images selected now join the running import instead of waiting for the next one; the run
      // then carries on past the window's end (`pausesAtWindowEnd`).
      this.joinWanted = true;
      this.selectionJoined = true;
      return this.current;
    }
    this.again ??= trigger;
    if (!this.loop) {
      // Announced before anything awaits, so the command that asked answers "running".
      this.startLoop();
    }
    return this.current;
  }

  /**
   * import:start: an import starts (or, while one runs, runs again when it ends). The note is
   * recorded in the transaction that starts the run, or on its own when the import has to wait;
   * the promise rejects when that write fails (nothing is answered ok that was not recorded).
   */
  async start(trigger: ImportTrigger, note: AuditNote): Promise<{ state: ImportState; entry: AuditEntry }> {
    if (this.loop || this.closing) {
      const state = this.request(trigger);
      return { state, entry: await this.data.write((tx) => tx.audit.record(note)) };
    }
    const { pending, recorded } = pendingNote(note);
    this.startNote = pending;
    // The run starts synchronously up to its first write, which takes the note.
    const state = this.request(trigger);
    if (this.startNote === pending) {
      this.startNote = null;
      return { state, entry: await this.data.write((tx) => tx.audit.record(note)) };
    }
    return { state, entry: await recorded };
  }

  /**
   * The schedule with auto-import off: read the source and mark newer versions `available`,
   * downloading nothing. Skipped when an import is queued anyway (it reads the source too).
   */
  requestCheck(): void {
    if (this.closing) return;
    this.checkWanted = true;
    if (!this.loop) this.startLoop();
  }

  /**
   * Drops store files nothing needs. Runs in the importer's slot, never beside an import, so it
   * cannot see a plan half-applied or delete a file a plan just counted as stored.
   */
  requestGarbageCollection(): void {
    if (this.closing) return;
    this.gcWanted = true;
    if (!this.loop) this.startLoop();
  }

  private startLoop(): void {
    this.loop = this.drain()
      .catch((error: unknown) => this.log.error({ err: error }, "importer queue failed"))
      .finally(() => {
        this.loop = null;
        this.phase = "idle";
        // Imports, checks and store GCs all done: what they held goes back now, not at the next
        // import (src/memory.ts).
        if (!this.closing) releaseAfterRun();
      });
  }

  private async drain(): Promise<void> {
    // A GC asked for while idle goes first; otherwise imports, then a check, then GC.
    if (this.gcWanted && !this.again) {
      this.gcWanted = false;
      await this.collectGarbageLogged();
    }
    while (!this.closing && !this.lost) {
      const trigger = this.again;
      if (trigger) {
        this.again = null;
        this.checkWanted = false; // the import reads the source anyway
        await this.runOnce(trigger);
      } else if (this.checkWanted) {
        this.checkWanted = false;
        await this.checkOnce();
      } else if (this.gcWanted) {
        this.gcWanted = false;
        await this.collectGarbageLogged();
      } else return;
    }
  }

  /**
   * Aborts the running import (its downloads' `.partial` files stay for the next import) and
   * forgets queued re-runs. Answers as soon as that import has stopped and been recorded, whatever
   * was queued behind it meanwhile.
   */
  async stop(by: string): Promise<{ state: ImportState; entry: AuditEntry }> {
    this.again = null;
    this.joinWanted = false;
    this.waitForWindow(false);
    const ended = this.runEnded;
    if (!ended || !this.abort) {
      const note = { by, action: "import:stop", detail: "stop requested; no import was running" };
      return { state: this.current, entry: await this.data.write((tx) => tx.audit.record(note)) };
    }
    const { pending, recorded } = pendingNote({ by, action: "import:stop", detail: "import stopped" });
    this.stopNote?.reject(new Error("superseded by another stop"));
    this.stopNote = pending;
    this.phase = "stopping";
    this.stoppedBy = by;
    this.abort.abort(new Error(`${IMPORT_STOPPED}${by}`));
    await ended;
    // The run ended before it could take the note (or was left unfinished for a shutdown).
    if (this.stopNote === pending) {
      this.stopNote = null;
      pending.resolve(await this.data.write((tx) => tx.audit.record(pending.note)));
    }
    return { state: this.current, entry: await recorded };
  }

  /** Waits until the queue is empty (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /**
   * Shutdown: the run is aborted but left unfinished in the database, so the next start resumes it
   * exactly as after a crash; only the downloads' `.partial` files carry over.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.again = null;
    this.window.stop();
    this.abort?.abort(new Error("region shutting down"));
    // Runs whose end was never written stay unfinished: recover() closes them at the next start.
    if (this.backlogTimer) clearTimeout(this.backlogTimer);
    this.backlogTimer = null;
    await this.idle().catch((error: unknown) => this.log.warn({ err: error }, "import ended with an error"));
    await this.images.settled();
    await this.deferredWrites;
    await this.dispatcher.close();
  }

  /**
   * This node stops leading: like a shutdown (the run stays unfinished, so the next leader resumes
   * it), but this importer may run again if the node leads again.
   */
  async halt(): Promise<void> {
    this.closing = true;
    // Queued behind the run (whose unfinished row the next leader resumes), or asked for while a
    // check ran: kept for when this node leads again.
    this.wanted = this.again ?? this.wanted;
    this.again = null;
    // A follower runs nothing on its own; the engine sets the window again when it leads. What it
    // owed stays recorded (WAITING_FOR_WINDOW) for the next leader's recover().
    this.window.stop();
    this.deferred = false;
    this.abort?.abort(new Error("this region node stopped leading"));
    try {
      await this.idle();
    } catch (error) {
      this.log.warn({ err: error }, "import ended with an error while stepping down");
    } finally {
      this.closing = false;
      this.lost = null;
    }
  }

  /**
   * Whether `error` says the database connection (or the leader lease) is gone, on a cluster. The
   * first one stops the run (its downloads keep their `.partial` files) and tells the region, which
   * steps down; the run is left unfinished for the next leader.
   */
  private databaseLost(error: unknown): boolean {
    if (this.lost) return true;
    const notify = this.options.onDatabaseLost;
    if (!notify || !this.current.running) return false;
    if (!(error instanceof FencedError) && !databaseConnectionLost(error)) return false;
    this.lost = `the database went away: ${describeError(error)}`;
    this.log.warn({ err: error }, "import interrupted: the database went away; the next leader resumes it");
    this.abort?.abort(new Error(`import interrupted: ${this.lost}`));
    notify(this.lost);
    return true;
  }

  private announce(state: ImportState): void {
    this.current = state;
    this.bus.emit("import", { import: state });
  }

  private async runOnce(trigger: ImportTrigger): Promise<void> {
    const abort = new AbortController();
    let ended!: () => void;
    this.runEnded = new Promise((resolve) => (ended = resolve));
    this.abort = abort;
    this.stoppedBy = null;
    this.pausedWhy = null;
    this.selectionJoined = false;
    this.phase = "running";
    const startedAt = now();
    this.announce({ running: true, trigger, startedAt, finishedAt: null, error: null });
    this.log.info({ trigger }, "import started");
    let runId: number | null = null;
    let error: string | null = null;
    this.lost = null;
    const note = this.startNote;
    this.startNote = null;
    try {
      // The run's row and the note of the import:start that asked for it commit together.
      const started = await this.data
        .write(async (tx) => ({
          id: await tx.runs.start(trigger, startedAt),
          entry: note ? await tx.audit.record(note.note) : null,
        }))
        .catch((caught: unknown) => {
          note?.reject(caught);
          throw caught;
        });
      runId = started.id;
      if (note && started.entry) note.resolve(started.entry);
      const contents = await this.source.read(abort.signal);
      await this.selection.ensureDefault(contents.catalogue);
      error = await this.importFrom(contents, abort.signal);
    } catch (caught) {
      error = describeError(caught);
      this.databaseLost(caught);
    } finally {
      this.abort = null;
      await this.finish(trigger, startedAt, runId, error).finally(() => {
        this.runEnded = null;
        this.phase = "running";
        ended();
      });
    }
  }

  /** Every run ends here: images left pending are settled, the run recorded and `running: false` told. */
  private async finish(
    trigger: ImportTrigger,
    startedAt: string,
    runId: number | null,
    failure: string | null,
  ): Promise<void> {
    if (this.lost) return this.interrupted(trigger, startedAt, runId);
    let error = failure;
    const stopped = this.closing || this.stoppedBy !== null || this.pausedWhy !== null;
    if (this.stoppedBy && !this.closing) error = `${IMPORT_STOPPED}${this.stoppedBy}`;
    else if (this.pausedWhy && !this.closing) error = this.pausedWhy;
    const settle: Settle = { stopped, why: error ?? "the import ended before this image was done" };
    try {
      await this.images.settled();
      await this.settle(settle);
    } catch (caught) {
      this.log.error({ err: caught }, "could not settle the images of the import; retrying");
      error ??= `could not record the images' state: ${describeError(caught)}`;
      if (!this.closing) this.later({ settle });
    }
    if (this.closing) {
      // Left unfinished on purpose: recover() resumes it at the next start.
      this.log.info({ trigger }, "import interrupted by shutdown; it resumes at the next start");
      return;
    }
    const finishedAt = now();
    // The run's end and the note of the import:stop that ended it commit together.
    const note = this.stopNote;
    this.stopNote = null;
    if (runId !== null || note) {
      try {
        const recorded = error;
        const entry = await this.data.write(async (tx) => {
          if (runId !== null) await tx.runs.finish(runId, finishedAt, recorded);
          return note ? tx.audit.record(note.note) : null;
        });
        if (note && entry) note.resolve(entry);
      } catch (caught) {
        note?.reject(caught);
        this.log.error({ err: caught }, "could not record the end of the import; retrying");
        error ??= `could not record the import: ${describeError(caught)}`;
        if (runId !== null) this.later({ run: { id: runId, finishedAt, error } });
      }
    }
    this.announce({ running: false, trigger, startedAt, finishedAt, error });
    this.log.info({ trigger, error }, "import finished");
    try {
      this.options.events?.emit("import.finished", { error });
    } catch (caught) {
      this.log.error({ err: caught }, "after-import listener failed");
    }
  }

  /**
   * The run met a lost database: like a shutdown, nothing is settled or recorded (the writes would
   * fail, and the images' progress and the unfinished run are what the next leader resumes from).
   */
  private async interrupted(trigger: ImportTrigger, startedAt: string, runId: number | null): Promise<void> {
    await this.images.settled();
    // Nothing in the database says this import is wanted: remember it for when this node leads again.
    if (runId === null) this.wanted ??= trigger;
    this.current = { running: false, trigger, startedAt, finishedAt: null, error: this.lost };
    this.log.info({ trigger, runId }, "import interrupted; it resumes when a region node leads again");
  }

  /** Stopped: what had not finished goes back to queued. Failed: it says why, never "downloading". */
  private async settle({ stopped, why }: Settle): Promise<void> {
    const at = now();
    await this.images.transition(
      this.images
        .all()
        .filter((row) => pending(row))
        .map((row) => row.id),
      (row) => (stopped ? (importStopped(row, at) ?? null) : importFailed(row, why, at)),
    );
  }

  /** Keeps what could not be written, and tries it again every RETRY_MS until it is. */
  private later(what: {
    run?: { id: number; finishedAt: string; error: string | null };
    settle?: Settle;
  }): void {
    if (what.run) this.backlog.runs.push(what.run);
    if (what.settle) this.backlog.settle = what.settle;
    if (this.backlogTimer) return;
    const tick = () => {
      this.backlogTimer = null;
      this.flushBacklog().then(
        (done) => {
          if (!done && !this.closing) this.backlogTimer = setTimeout(tick, RETRY_MS).unref();
        },
        (error: unknown) => this.log.error({ err: error }, "could not retry the import's records"),
      );
    };
    this.backlogTimer = setTimeout(tick, RETRY_MS).unref();
  }

  /** Returns true when nothing is left to write. The runs first: images seen settled mean the run is recorded. */
  private async flushBacklog(): Promise<boolean> {
    const runs = [...this.backlog.runs];
    if (runs.length) {
      try {
        await this.data.write(async (tx) => {
          for (const run of runs) await tx.runs.finish(run.id, run.finishedAt, run.error);
        });
        this.backlog.runs.splice(0, runs.length);
        this.log.info({ runs: runs.length }, "recorded the end of imports the database had refused");
      } catch (error) {
        this.log.debug({ err: error }, "import ends still not recorded");
        return false;
      }
    }
    // Images are settled only between runs: a run that started since re-planned them.
    if (this.runEnded) this.backlog.settle = null;
    if (this.backlog.settle) {
      try {
        await this.settle(this.backlog.settle);
        this.backlog.settle = null;
      } catch (error) {
        this.log.debug({ err: error }, "images still not settled");
      }
    }
    return this.backlog.runs.length === 0 && this.backlog.settle === null;
  }

  /** The check-only run: newer versions become `next.state = "available"`; nothing downloads. */
  private async checkOnce(): Promise<void> {
    this.phase = "running";
    try {
      const contents = await this.source.read(new AbortController().signal);
      const plan = planImport({
        selection: this.selection.get().items,
        offered: contents.images,
        held: this.held(),
        stored: new Set(await this.store.list()),
      });
      const at = now();
      const byId = new Map(plan.images.map((image) => [image.id, image]));
      await this.images.transition(byId.keys(), (row) =>
        versionOffered(row, asPlanned(byId.get(row.id)!), at),
      );
      const gone = new Set(plan.unavailable.map((u) => u.id));
      await this.images.transition(gone, (row) => notOffered(row, contents.url, at));
      this.log.info({ available: plan.images.filter((i) => i.missing.length).length }, "source checked");
    } catch (error) {
      this.log.warn({ err: error }, "scheduled source check failed");
    }
  }

  private held() {
    return new Map(this.images.all().map((row) => [row.id, { version: row.version, state: row.state }]));
  }

  /** Returns the import's error summary, or null when every image made it. */
  private async importFrom(contents: SourceContents, signal: AbortSignal): Promise<string | null> {
    const plan = planImport({
      selection: this.selection.get().items,
      offered: contents.images,
      held: this.held(),
      stored: new Set(await this.store.list()),
    });
    await this.applyPlan(plan, contents);
    const planned = new Set(plan.images.map((image) => image.id));
    const unavailable = plan.unavailable.map((u) => u.id);
    this.joinable = true;
    let failures: string[];
    try {
      failures = await this.download(plan, contents.url, signal);
      // Images selected while this ran: planned from the same read, downloaded in the same run.
      while (this.joinWanted && !signal.aborted) {
        this.joinWanted = false;
        const next = planImport({
          selection: this.selection.get().items,
          offered: contents.images,
          held: this.held(),
          stored: new Set(await this.store.list()),
        });
        // New images, and images deselected and selected again meanwhile (a fresh record).
        const joined = next.images.filter((image) => {
          const row = this.images.get(image.id);
          const fresh = row && row.targetVersion !== image.version && row.version !== image.version;
          return !planned.has(image.id) || fresh;
        });
        const missing = next.unavailable.filter((u) => !planned.has(u.id) && !unavailable.includes(u.id));
        if (joined.length === 0 && missing.length === 0) continue;
        const ids = new Set(joined.map((image) => image.id));
        for (const id of ids) planned.add(id);
        unavailable.push(...missing.map((u) => u.id));
        const part: Plan = {
          images: joined,
          unavailable: missing,
          remove: [],
          fetch: next.fetch
            .map(({ file, images }) => ({ file, images: images.filter((id) => ids.has(id)) }))
            .filter((entry) => entry.images.length > 0),
        };
        this.log.info({ images: [...ids] }, "images selected mid-import join it");
        await this.applyPlan(part, contents);
        failures.push(...(await this.download(part, contents.url, signal)));
      }
    } finally {
      this.joinable = false;
      // A save that could not join (the run failed or stopped first) gets an import of its own.
      if (this.joinWanted) {
        this.joinWanted = false;
        this.again ??= "selection";
      }
    }
    signal.throwIfAborted();
    await this.collectGarbageLogged();
    const problems = [...failures, ...unavailable.map((id) => `${id} is not offered by the source`)];
    return problems.length ? `${problems.length} image(s) failed: ${problems.slice(0, 3).join("; ")}` : null;
  }

  /**
   * Records each image's target version and files, switches the ones already complete, and marks
   * what the source no longer offers. Images deselected since planning are left alone.
   */
  private async applyPlan(plan: Plan, contents: SourceContents): Promise<void> {
    const at = now();
    const changed: ImageRecord[] = [];
    for (const { id } of plan.unavailable) {
      const row = this.images.get(id);
      const next = row && notOffered(row, contents.url, at);
      if (next) changed.push(next);
    }
    for (const image of plan.images) {
      const row = this.images.get(image.id);
      const next = row && planApplied(row, asPlanned(image), at);
      if (next) changed.push(next);
    }
    await this.images.applyPlan(plan.images, changed);
    // Images that already hold every file switch now, in one write each.
    for (const image of plan.images) if (image.missing.length === 0) await this.switchVersion(image);
  }

  /** The one write that makes an image serve its new version (checked in the database). */
  private async switchVersion(image: ImagePlan): Promise<void> {
    const at = now();
    const done = await this.images.switchVersion(image, (row) => versionSwitched(row, asPlanned(image), at));
    if (!done) return;
    this.log.info({ image: image.id, version: image.version }, "image synced");
  }

  /** Downloads every missing file, DOWNLOAD_CONCURRENCY at a time. Returns one line per failed image. */
  private async download(plan: Plan, sourceUrl: string, signal: AbortSignal): Promise<string[]> {
    const byId = new Map(plan.images.map((image) => [image.id, image]));
    const remaining = new Map(plan.images.map((image) => [image.id, image.missing.length]));
    const done = new Map(plan.images.map((image) => [image.id, image.bytesStored]));
    const failed = new Map<string, string>();
    // The source's Basic credentials go with its payloads too (the downloader keeps them on its host).
    const authorization = await this.source.authorization();

    const progress = (ids: string[], delta: number) => {
      for (const id of ids) {
        if (!this.images.get(id) || failed.has(id)) continue;
        const bytes = (done.get(id) ?? 0) + delta;
        done.set(id, bytes);
        // queued → downloading once (written), then progress in memory; a held version stays served.
        if (!this.images.beginDownload(id, bytes)) this.images.progress(id, bytes);
      }
    };

    const results = await runPool(
      plan.fetch,
      this.options.concurrency,
      async ({ file, images }) => {
        const waiting = images.filter((id) => !failed.has(id) && this.images.get(id));
        if (waiting.length === 0) return;
        try {
          await this.fetchFile(file, sourceUrl, authorization, signal, (delta) => progress(waiting, delta));
        } catch (error) {
          if (isAbortError(error) || signal.aborted || this.databaseLost(error)) throw error;
          const message = noSpace(error)
            ? `no space left in the image store (ENOSPC): ${describeError(error)}`
            : error instanceof DownloadError
              ? error.message
              : describeError(error);
          this.log.warn({ sha256: file.sha256, path: file.path, error: message }, "file download failed");
          for (const id of waiting) {
            if (failed.has(id)) continue;
            failed.set(id, message);
            await this.failImage(id, `${file.ftype} ${file.path}: ${message}`).catch((e: unknown) => {
              this.databaseLost(e);
              throw e;
            });
          }
          return;
        }
        for (const id of waiting) {
          const left = (remaining.get(id) ?? 1) - 1;
          remaining.set(id, left);
          if (left !== 0 || failed.has(id)) continue;
          try {
            await this.switchVersion(byId.get(id)!);
          } catch (error) {
            // The database is gone: the next leader finds every file stored and switches it.
            if (this.databaseLost(error)) throw error;
            // The file is stored and verified; the database did not take the switch. Say so, and
            // let the next import (which finds every file stored) switch it.
            const message = `could not record the new version: ${describeError(error)}`;
            this.log.error({ err: error, image: id }, "version switch failed");
            failed.set(id, message);
            await this.failImage(id, message).catch((e: unknown) =>
              this.log.error({ err: e, image: id }, "could not mark the image failed"),
            );
          }
        }
      },
      signal,
    );
    // A worker that threw for another reason than the stop (a database write failed) fails its images.
    const lost: string[] = [];
    results.forEach((result, index) => {
      if (result.status === "fulfilled" || signal.aborted || isAbortError(result.reason)) return;
      const entry = plan.fetch[index]!;
      this.log.error({ err: result.reason, sha256: entry.file.sha256 }, "download worker failed");
      for (const id of entry.images) if (!failed.has(id)) failed.set(id, describeError(result.reason));
      lost.push(describeError(result.reason));
    });
    if (lost.length) throw new Error(lost[0]);
    return [...failed].map(([id, message]) => `${id}: ${message}`);
  }

  /**
   * Fetches one file again from the source, through this importer's downloader, agent and
   * bandwidth cap (peers first on a cluster): `store:verify { repair }` puts a corrupt file back.
   */
  async refetch(file: PlannedFile, signal: AbortSignal, onProgress: (delta: number) => void): Promise<void> {
    const authorization = await this.source.authorization();
    await this.fetchFile(file, this.source.state().url, authorization, signal, onProgress);
  }

  private async fetchFile(
    file: PlannedFile,
    sourceUrl: string,
    authorization: string | null,
    signal: AbortSignal,
    reportProgress: (delta: number) => void,
  ): Promise<void> {
    const onProgress = (delta: number) => {
      reportProgress(delta);
      this.received(delta);
    };
    if (await this.options.peers?.fetchVerified(file, signal, onProgress)) return;
    const url = resolveItemUrl(sourceUrl, file.path);
    if (url.startsWith("file:")) {
      await copyLocalFile(this.store, new URL(url), file.sha256, file.size, signal, onProgress);
      return;
    }
    await downloadFile({
      store: this.store,
      url,
      sha256: file.sha256,
      size: file.size,
      signal,
      onProgress,
      ...(authorization === null ? {} : { headers: { authorization } }),
      dispatcher: this.dispatcher,
      bandwidth: this.bandwidth,
      ...(this.options.minRate === undefined ? {} : { minRate: this.options.minRate }),
    });
  }

  private async failImage(id: string, error: string): Promise<void> {
    const at = now();
    await this.images.transition([id], (row) => importFailed(row, error, at));
  }

  private async collectGarbageLogged(): Promise<void> {
    await this.collectGarbage().catch((error: unknown) =>
      this.log.error({ err: error }, "garbage collection failed"),
    );
  }

  /**
   * Deletes store files (and `.partial`s) that no image needs — neither a held nor a target
   * version — and that no rack is still pulling. Call it only from the importer's slot.
   */
  private async collectGarbage(): Promise<void> {
    const needed = await this.images.neededFiles();
    for (const sha of (await this.options.events?.ask("racks.pinned")) ?? []) needed.add(sha);
    const drop = unreferencedFiles(await this.store.list(), needed);
    for (const sha of drop) await this.store.remove(sha);
    const partials = unreferencedFiles(await this.store.listPartials(), needed);
    for (const sha of partials) await this.store.discardPartial(sha);
    if (drop.length || partials.length)
      this.log.info({ files: drop.length, partials: partials.length }, "removed files no image needs");
  }
}
