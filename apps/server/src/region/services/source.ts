import { readSource, SourceError, type Catalogue, type SourceContents } from "@bootstream/images";
import { CommandError, type SourceState } from "@bootstream/protocol";
import type { EntityManager } from "typeorm";
import type { Database } from "../db/database";
import { BootSourceEntity, type BootSourceRow } from "../db/entities";
import type { EventBus } from "../events";
import type { Logger } from "../../log";
import { now } from "../clock";

/**
 * The boot source: where images come from, the keyring that verifies it, and the catalogue it last
 * offered. A read either succeeds whole or changes nothing but `error`.
 */
export class SourceService {
  private row: BootSourceRow | null = null;
  private cached: Catalogue | null = null;

  constructor(
    private readonly db: Database,
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {}

  /** First start stores the configured source; afterwards the stored one wins. */
  async init(url: string, keyring: string | null): Promise<SourceState> {
    // Two nodes starting at once both try: the first insert wins, the other's is ignored.
    const row: BootSourceRow = { id: 1, url, keyring, lastFetch: null, error: null, catalogue: null };
    await this.db.write((m) =>
      m.createQueryBuilder().insert().into(BootSourceEntity).values(row).orIgnore().execute(),
    );
    this.row = await this.db.manager.findOneOrFail(BootSourceEntity, { where: { id: 1 } });
    this.cached = this.row.catalogue ? (JSON.parse(this.row.catalogue) as Catalogue) : null;
    return this.state();
  }

  /** Re-reads the stored source (a node taking over the lead may hold an old copy). */
  async reload(): Promise<void> {
    const row = await this.db.manager.findOne(BootSourceEntity, { where: { id: 1 } });
    if (!row) return;
    this.row = row;
    this.cached = row.catalogue ? (JSON.parse(row.catalogue) as Catalogue) : null;
  }

  state(): SourceState {
    const row = this.requireRow();
    return { url: row.url, keyringSet: row.keyring !== null, lastFetch: row.lastFetch, error: row.error };
  }

  /** The catalogue as last read, without touching the network. */
  cachedCatalogue(): Catalogue | null {
    return this.cached;
  }

  async catalogue(): Promise<Catalogue> {
    if (this.cached) return this.cached;
    try {
      return (await this.read()).catalogue;
    } catch (error) {
      if (error instanceof SourceError) throw new CommandError("source-error", error.message);
      throw error;
    }
  }

  /** Reads the stored source now. Records the outcome (lastFetch or error) and tells everyone. */
  async read(signal?: AbortSignal): Promise<SourceContents> {
    const row = this.requireRow();
    try {
      const contents = await readSource({
        url: row.url,
        keyring: row.keyring,
        ...(signal ? { signal } : {}),
      });
      signal?.throwIfAborted();
      // The source changed while we read the old one: what we read is not news about the new one.
      if (this.row?.url !== row.url) return contents;
      for (const warning of contents.warnings) this.log.warn({ source: row.url }, warning);
      await this.record(row, { lastFetch: now(), error: null, catalogue: contents.catalogue });
      return contents;
    } catch (error) {
      if (error instanceof SourceError && this.row?.url === row.url) {
        this.log.warn({ source: row.url, error: error.message }, "boot source read failed");
        await this.record(row, { error: error.message });
      }
      throw error;
    }
  }

  /**
   * Points the region at another source. The new one is read (and verified) first: on any failure
   * the old source, its catalogue and the selection stay exactly as they were. `alongside` runs in
   * the same transaction (the command's audit row), and its result is returned with the change.
   */
  async update<T>(
    url: string,
    keyring: string | null,
    alongside: (m: EntityManager) => Promise<T>,
  ): Promise<{ source: SourceState; catalogue: Catalogue; alongside: T }> {
    let contents: SourceContents;
    try {
      contents = await readSource({ url, keyring });
    } catch (error) {
      if (error instanceof SourceError) throw new CommandError("source-error", error.message);
      throw error;
    }
    for (const warning of contents.warnings) this.log.warn({ source: url }, warning);
    const row: BootSourceRow = {
      id: 1,
      url: contents.url,
      keyring,
      lastFetch: now(),
      error: null,
      catalogue: JSON.stringify(contents.catalogue),
    };
    const extra = await this.db.write(async (m) => {
      await m.save(BootSourceEntity, row);
      return alongside(m);
    });
    this.row = row;
    this.cached = contents.catalogue;
    this.bus.emit("source", { source: this.state() });
    return { source: this.state(), catalogue: contents.catalogue, alongside: extra };
  }

  /**
   * Records what a read of `read` found: only the fields a read owns, and only while the stored
   * source is still the one read (`WHERE url = …`), so a `source:update` committed meanwhile is
   * never reverted by an import that read the old source.
   */
  private async record(
    read: BootSourceRow,
    change: { lastFetch?: string; error: string | null; catalogue?: Catalogue },
  ): Promise<void> {
    const fields: Partial<BootSourceRow> = { error: change.error };
    if (change.lastFetch) fields.lastFetch = change.lastFetch;
    if (change.catalogue) fields.catalogue = JSON.stringify(change.catalogue);
    const result = await this.db.write((m) => m.update(BootSourceEntity, { id: 1, url: read.url }, fields));
    const current = this.row;
    if (!result.affected || !current || current.url !== read.url) return;
    this.row = { ...current, ...fields };
    if (change.catalogue) this.cached = change.catalogue;
    this.bus.emit("source", { source: this.state() });
  }

  private requireRow(): BootSourceRow {
    if (!this.row) throw new Error("SourceService used before init()");
    return this.row;
  }
}
