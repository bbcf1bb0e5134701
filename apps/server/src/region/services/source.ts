import {
  basicAuthorization,
  readSource,
  SourceError,
  splitCredentials,
  type Catalogue,
  type SourceContents,
  type SourceCredentials,
} from "@bootstream/images";
import { CommandError, type AuditEntry, type SourceState } from "@bootstream/protocol";
import type { Database } from "../db/database";
import { Repositories, type AuditNote } from "../db/repositories";
import type { BootSourceRow } from "../db/repositories/source";
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
  private readonly data: Repositories;

  constructor(
    db: Database,
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {
    this.data = new Repositories(db);
  }

  /** First start stores the configured source; afterwards the stored one wins. */
  async init(configured: string, keyring: string | null): Promise<SourceState> {
    const { url, credentials } = splitCredentials(configured);
    // Two nodes starting at once both try: the first insert wins, the other's is ignored.
    const row: BootSourceRow = { id: 1, url, keyring, lastFetch: null, error: null, catalogue: null };
    await this.data.write((tx) => tx.source.ensure(row, credentials));
    this.row = await this.data.read.source.get();
    if (!this.row) throw new Error("the boot source row is missing after it was stored");
    await this.separateStoredCredentials();
    this.cached = this.row.catalogue ? (JSON.parse(this.row.catalogue) as Catalogue) : null;
    return this.state();
  }

  /** A URL stored with `user:pass@` by an older version: the credentials move to their own row. */
  private async separateStoredCredentials(): Promise<void> {
    const row = this.requireRow();
    const { url, credentials } = splitCredentials(row.url);
    if (!credentials) return;
    await this.data.write((tx) => tx.source.separateCredentials(row.url, url, credentials));
    this.row = { ...row, url };
  }

  /** The stored source's keyring, read fresh (another node may have changed the source). */
  async storedKeyring(): Promise<string | null> {
    return (await this.data.read.source.get())?.keyring ?? null;
  }

  /** The stored source's credentials, read fresh (another node may have changed the source). */
  async credentials(): Promise<SourceCredentials | null> {
    return this.data.read.source.credentials();
  }

  /** `Authorization` for requests to the source (its documents and payloads), or null. */
  async authorization(): Promise<string | null> {
    const credentials = await this.credentials();
    return credentials === null ? null : basicAuthorization(credentials);
  }

  /** Re-reads the stored source (a node taking over the lead may hold an old copy). */
  async reload(): Promise<void> {
    const row = await this.data.read.source.get();
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
        credentials: await this.credentials(),
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
   * the old source, its catalogue and the selection stay exactly as they were. The command's audit
   * note is recorded in the change's transaction. `url` carries no credentials (the caller split
   * them off); `credentials` replace the stored ones.
   */
  async update(
    url: string,
    keyring: string | null,
    credentials: SourceCredentials | null,
    note: AuditNote,
  ): Promise<{ source: SourceState; catalogue: Catalogue; entry: AuditEntry }> {
    let contents: SourceContents;
    try {
      contents = await readSource({ url, keyring, credentials });
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
    const entry = await this.data.write(async (tx) => {
      await tx.source.replace(row, credentials);
      return tx.audit.record(note);
    });
    this.row = row;
    this.cached = contents.catalogue;
    this.bus.emit("source", { source: this.state() });
    return { source: this.state(), catalogue: contents.catalogue, entry };
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
    // The same failure again (a source down, read by every catalogue:get while none is cached) is
    // no news: neither written nor told. A `source` event makes dashboards ask for the catalogue,
    // which read the source, failed, and told again: a loop until their sockets were rate-limited.
    const before = this.row;
    if (before?.url === read.url && !change.lastFetch && before.error === change.error) return;
    const written = await this.data.write((tx) => tx.source.recordRead(read.url, fields));
    const current = this.row;
    if (!written || !current || current.url !== read.url) return;
    this.row = { ...current, ...fields };
    if (change.catalogue) this.cached = change.catalogue;
    this.bus.emit("source", { source: this.state() });
  }

  private requireRow(): BootSourceRow {
    if (!this.row) throw new Error("SourceService used before init()");
    return this.row;
  }
}
