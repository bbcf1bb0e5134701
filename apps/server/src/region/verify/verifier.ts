import {
  CORRUPT_WARNING,
  IDLE_VERIFY,
  REPAIR_FAILED,
  corruptionWarned,
  heldFiles,
  imagesNeeding,
  isAbortError,
  verifyRestored,
  verifyStep,
  type ContentStore,
  type FileCheck,
  type PlannedFile,
  type VerifyState,
  type VerifyStep,
} from "@bootstream/images";
import type { Logger } from "../../log";
import { releaseAfterRun } from "../../memory";
import { now } from "../clock";
import type { Database } from "../db/database";
import { Repositories } from "../db/repositories";
import { PROGRESS_INTERVAL_MS, type EventBus } from "../events";
import type { InternalEvents } from "../internal-events";
import type { AuditLog } from "../services/audit";
import type { ImageRegistry } from "../services/images";
import type { SettingsStore } from "../services/settings";

/** The internal setting the last run's state is kept in (corrupt files are also on disk, in quarantine/). */
export const VERIFY_SETTING = "verify.state";

export type VerifierDeps = {
  db: Database;
  store: ContentStore;
  bus: EventBus;
  internal: InternalEvents;
  images: ImageRegistry;
  settings: SettingsStore;
  audit: AuditLog;
  /** The importer's downloader: fetches one file again from the source (`Importer.refetch`). */
  refetch: (file: PlannedFile, signal: AbortSignal, onProgress: (delta: number) => void) => Promise<void>;
  log: Logger;
};

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * `store:verify`: re-hashes every file of the region's store in the background, one file at a time
 * and streaming (1 MiB reads), so memory stays bounded and imports, `/files` and the event loop go
 * on beside it. A corrupt file is taken out of service at once — moved to quarantine/, so `/files`
 * answers 404 for it and no manifest offers an image that needs it — and those images show a
 * `warning`. With `repair`, each corrupt file is fetched again through the importer's downloader
 * and put back in service, and the warnings go. Progress goes out as `verify` events, coalesced like
 * import progress (at most one per PROGRESS_INTERVAL_MS, the latest value wins).
 *
 * One run at a time: a `store:verify` while one runs joins it (and may turn its repair on).
 * Changes of state (a corrupt file, a repair, an import that fetched a file again) run one at a
 * time (`exclusive`), so the run and `import.finished` never interleave their writes.
 */
export class Verifier {
  private state: VerifyState = IDLE_VERIFY;
  private readonly data: Repositories;
  private run: Promise<void> | null = null;
  private abort: AbortController | null = null;
  private tail: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private lastSent = 0;
  /** Out of service because missing from the store (not corrupt): racks keep their copies. */
  private readonly missingNow = new Set<string>();
  /** Closed (stopping, or this node stopped leading) until it leads again: no scheduled run starts. */
  private closed = false;

  constructor(private readonly deps: VerifierDeps) {
    this.data = new Repositories(deps.db);
    // Withheld from racks: what is corrupt, not what is missing. A rack holds a missing file's
    // bytes checked against its sha256, and a lost or unmounted store makes every file missing at
    // once: withheld, every rack would drop every image. A rack that lacks one fails its sync on the
    // 404 instead, and says so.
    deps.internal.answer(
      "store.unservable",
      () => new Set(this.state.corrupt.filter((sha) => !this.missingNow.has(sha))),
    );
  }

  get current(): VerifyState {
    return this.state;
  }

  /** Reads the last run back: what quarantine/ holds is still corrupt; a run cut by a restart ended. */
  async load(): Promise<void> {
    const saved = await this.deps.settings.getInternal(VERIFY_SETTING);
    let parsed: VerifyState | null = null;
    try {
      parsed = saved === null ? null : { ...IDLE_VERIFY, ...(JSON.parse(saved) as Partial<VerifyState>) };
    } catch {
      this.deps.log.warn("the stored verification state is unreadable: starting from what the disk holds");
    }
    // Out of service: what quarantine/ holds, and what was found missing and is missing still.
    const corrupt = await this.deps.store.listQuarantined();
    this.missingNow.clear();
    for (const sha of parsed?.corrupt ?? []) {
      if (corrupt.includes(sha) || (await this.present(sha))) continue;
      corrupt.push(sha);
      this.missingNow.add(sha);
    }
    this.state = verifyRestored(parsed, corrupt);
    this.deps.bus.seed((live) => (live.verify = this.state));
  }

  /** Starts a run, or joins the one running (a repair asked for turns the running run's repair on). */
  async start(repair: boolean, by: string): Promise<VerifyState> {
    if (this.state.running) {
      await this.deps.audit.add({
        by,
        action: "store:verify",
        detail: `${repair ? "verify and repair" : "verify"} (joined the verification running)`,
      });
      this.step({ kind: "joined", repair }, true);
      // Kept: a restart that cuts the run shows the repair it was asked for.
      await this.persist();
      return this.state;
    }
    const shas = await this.deps.store.list();
    const sizes: number[] = [];
    for (const sha of shas) sizes.push((await this.deps.store.size(sha)) ?? 0);
    const bytesTotal = sizes.reduce((sum, size) => sum + size, 0);
    // A second start that raced this one while the store was listed joins it instead.
    if (this.state.running) return this.start(repair, by);
    await this.deps.audit.add({
      by,
      action: "store:verify",
      detail: `${repair ? "verify and repair" : "verify"} ${shas.length} file(s)`,
    });
    if (this.state.running) {
      this.step({ kind: "joined", repair }, true);
      // Kept: a restart that cuts the run shows the repair it was asked for.
      await this.persist();
      return this.state;
    }
    this.step({ kind: "started", repair, bytesTotal, at: now() }, true);
    const abort = new AbortController();
    this.abort = abort;
    await this.persist();
    this.run = this.execute(shas, abort.signal).finally(() => {
      this.run = null;
      this.abort = null;
      // What the re-hash and the repairs' downloads held goes back now (src/memory.ts).
      releaseAfterRun();
    });
    return this.state;
  }

  /**
   * The schedule's run: verify and repair, by "schedule". One already running (an admin's, or the
   * last tick's on a big store) is left alone: a tick neither joins it nor writes to the audit log.
   */
  async scheduled(): Promise<void> {
    // A tick that raced a step-down or a shutdown (the scheduler stops after this closes).
    if (this.closed) {
      this.deps.log.info("scheduled verification skipped: this node is not leading or is stopping");
      return;
    }
    if (this.state.running) {
      this.deps.log.info("scheduled verification skipped: one is running");
      return;
    }
    await this.start(true, "schedule");
  }

  /** Resolves when the run going now (if any) has ended. */
  async idle(): Promise<void> {
    await this.run;
    await this.tail;
  }

  /**
   * After an import (or when this node starts leading): a corrupt file the import fetched again
   * is back in service; one no image needs any more is dropped; the warnings follow what is left.
   */
  reconcile(): Promise<void> {
    return this.exclusive(async () => {
      let changed = false;
      const needed = await this.deps.images.neededFiles();
      for (const sha of [...this.state.corrupt]) {
        if (await this.deps.store.has(sha)) {
          await this.deps.store.discardQuarantined(sha);
          this.step({ kind: "repaired", sha256: sha }, true);
          this.deps.log.info(
            { sha256: sha },
            "a corrupt file was fetched again by an import: back in service",
          );
          changed = true;
        } else if (!needed.has(sha)) {
          await this.deps.store.discardQuarantined(sha);
          this.step({ kind: "dropped", sha256: sha }, true);
          changed = true;
        }
      }
      // An import plans a held image afresh (and drops its warnings): put back what still holds.
      await this.warn();
      if (changed) {
        this.deps.internal.emit("store.changed", {});
        await this.persist();
      }
    });
  }

  /**
   * This node leads now (each node has its own store): read its own state back and tell every
   * client, so a failover shows the new leader's store, not the old one's.
   */
  async lead(): Promise<void> {
    this.closed = false;
    await this.exclusive(async () => {
      await this.load();
      this.send(Date.now());
    });
    await this.reconcile();
  }

  /** Stops the run going now (shutdown, or this node stops leading); a later start runs afresh. */
  async close(): Promise<void> {
    this.closed = true;
    this.abort?.abort(new Error("the region is stopping"));
    await this.run?.catch(() => undefined);
    await this.tail.catch(() => undefined);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async execute(shas: string[], signal: AbortSignal): Promise<void> {
    const { log } = this.deps;
    let error: string | null = null;
    try {
      log.info(
        { files: shas.length, bytes: this.state.bytesTotal, repair: this.state.repair },
        "verify started",
      );
      // A file a held version needs and the store lacks (deleted by hand, lost with a disk) is as
      // unservable as a wrong one, and a repair fetches it the same way.
      await this.takeMissingOutOfService(await this.missing(signal), signal);
      for (const sha of shas) {
        signal.throwIfAborted();
        const result = await this.check(sha, signal);
        if (result === "corrupt") await this.takeOutOfService(sha);
      }
      if (this.state.repair) error = await this.repairAll(signal);
    } catch (caught) {
      error = signal.aborted ? "interrupted: the region is stopping" : describeError(caught);
      if (!signal.aborted) log.error({ err: caught }, "verify failed");
    }
    await this.exclusive(async () => {
      this.step({ kind: "finished", error, at: now() }, true);
      await this.persist();
    });
    log.info(
      { corrupt: this.state.corrupt.length, repaired: this.state.repaired.length, error },
      "verify finished",
    );
  }

  /** One file's bytes against its name; a file that cannot be read is no more servable than a wrong one. */
  private async check(sha: string, signal: AbortSignal): Promise<FileCheck> {
    try {
      return await this.deps.store.checkFile(sha, signal, (bytes) => this.step({ kind: "hashed", bytes }));
    } catch (error) {
      if (signal.aborted || isAbortError(error)) throw error;
      this.deps.log.warn({ sha256: sha, err: error }, "a stored file cannot be read: treated as corrupt");
      return "corrupt";
    }
  }

  /** Whether the store has the file; one it cannot even stat (EIO, EACCES) is not servable either. */
  private async present(sha: string): Promise<boolean> {
    try {
      return await this.deps.store.has(sha);
    } catch (error) {
      this.deps.log.warn(
        { sha256: sha, err: error },
        "a stored file cannot be looked at: treated as missing",
      );
      return false;
    }
  }

  /** sha256 of every file the images' held versions name, as the registry and database say now. */
  private async heldNow(): Promise<Set<string>> {
    const versions = new Map(this.deps.images.all().map((row) => [row.id, row.version]));
    return heldFiles(versions, await this.data.read.images.files());
  }

  /** Files of the held versions that are neither in the store nor already out of service. */
  private async missing(signal?: AbortSignal): Promise<string[]> {
    const missing: string[] = [];
    for (const sha of await this.heldNow()) {
      signal?.throwIfAborted();
      if (this.state.corrupt.includes(sha) || (await this.present(sha))) continue;
      missing.push(sha);
    }
    return missing.sort();
  }

  /**
   * Missing files go out of service in one step (one warning pass, one write), however many a lost
   * disk makes: each checked again first, as an import may have fetched it or switched away meanwhile.
   */
  private takeMissingOutOfService(shas: string[], signal: AbortSignal): Promise<void> {
    if (shas.length === 0) return Promise.resolve();
    return this.exclusive(async () => {
      const held = await this.heldNow();
      const gone: string[] = [];
      for (const sha of shas) {
        signal.throwIfAborted();
        if (held.has(sha) && !(await this.present(sha))) gone.push(sha);
      }
      if (gone.length === 0) return;
      this.deps.log.warn(
        { files: gone.length, sha256: gone.slice(0, 10) },
        "stored files are missing: out of service until repaired",
      );
      for (const sha of gone) {
        this.missingNow.add(sha);
        this.step({ kind: "corrupt", sha256: sha });
      }
      this.send(Date.now());
      this.deps.internal.emit("store.changed", {});
      await this.warn();
      await this.persist();
    });
  }

  private takeOutOfService(sha: string): Promise<void> {
    return this.exclusive(async () => {
      // Deleted meanwhile (garbage collection): nothing to take out.
      if (!(await this.deps.store.quarantine(sha))) return;
      this.deps.log.warn({ sha256: sha }, "stored file is corrupt: out of service until repaired");
      this.step({ kind: "corrupt", sha256: sha }, true);
      this.deps.internal.emit("store.changed", {});
      await this.warn();
      await this.persist();
    });
  }

  /** Fetches every corrupt file again; returns what could not be repaired, or null. */
  private async repairAll(signal: AbortSignal): Promise<string | null> {
    const failures: string[] = [];
    for (const sha of [...this.state.corrupt]) {
      signal.throwIfAborted();
      const file = (await this.data.read.images.files()).find((row) => row.sha256 === sha);
      if (!file) {
        await this.exclusive(async () => {
          await this.deps.store.discardQuarantined(sha);
          this.step({ kind: "dropped", sha256: sha }, true);
          await this.persist();
        });
        continue;
      }
      try {
        await this.deps.refetch(
          { sha256: file.sha256, size: file.size, path: file.path, ftype: file.ftype },
          signal,
          () => undefined,
        );
      } catch (error) {
        if (signal.aborted) throw error;
        this.deps.log.warn(
          { sha256: sha, path: file.path, err: error },
          "corrupt file could not be repaired",
        );
        failures.push(`${file.path}: ${describeError(error)}`);
        continue;
      }
      await this.exclusive(async () => {
        await this.deps.store.discardQuarantined(sha);
        this.step({ kind: "repaired", sha256: sha }, true);
        this.deps.log.info({ sha256: sha, path: file.path }, "corrupt file repaired from the source");
        this.deps.internal.emit("store.changed", {});
        await this.warn();
        await this.persist();
      });
    }
    if (failures.length === 0) return null;
    return `${REPAIR_FAILED} ${failures.length} file(s): ${failures.slice(0, 3).join("; ")}`;
  }

  /** Each image's warning follows the corrupt files its held version needs (only ours are taken back). */
  private async warn(): Promise<void> {
    const corrupt = new Set(this.state.corrupt);
    const rows = this.deps.images.all();
    const ours = rows.some((row) => row.warning?.startsWith(CORRUPT_WARNING));
    if (corrupt.size === 0 && !ours) return;
    const files = corrupt.size ? await this.data.read.images.files() : [];
    const needing = imagesNeeding(corrupt, new Map(rows.map((row) => [row.id, row.version])), files);
    const at = now();
    await this.deps.images.transition(
      rows.map((row) => row.id),
      (row) => corruptionWarned(row, needing.get(row.id) ?? [], at),
    );
  }

  private async persist(): Promise<void> {
    try {
      await this.deps.settings.setInternal(VERIFY_SETTING, JSON.stringify(this.state));
    } catch (error) {
      // quarantine/ on disk still remembers every corrupt file; only the run's figures are lost.
      this.deps.log.error({ err: error }, "could not record the verification state");
    }
  }

  private exclusive(job: () => Promise<void>): Promise<void> {
    const next = this.tail.then(job);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Folds a step in; progress goes out coalesced, anything else (`now`) at once with what waits. */
  private step(step: VerifyStep, immediate = false): void {
    if (step.kind === "repaired" || step.kind === "dropped") this.missingNow.delete(step.sha256);
    const next = verifyStep(this.state, step);
    if (next === this.state) return;
    this.state = next;
    const nowMs = Date.now();
    if (immediate || nowMs - this.lastSent >= PROGRESS_INTERVAL_MS) return this.send(nowMs);
    this.timer ??= setTimeout(() => this.send(Date.now()), this.lastSent + PROGRESS_INTERVAL_MS - nowMs);
  }

  private send(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.lastSent = at;
    this.deps.bus.emit("verify", { verify: this.state });
  }
}
