import {
  basicAuthorization,
  readSource,
  SourceError,
  splitCredentials,
  type Catalogue,
  type SourceContents,
  type SourceCredentials,
} from "@bootstream/images";
import { CommandError, type SourceState } from "@bootstream/protocol";
import type { EntityManager } from "typeorm";
import type { Database } from "../db/database";
import { BootSourceEntity, SettingEntity, type BootSourceRow } from "../db/entities";
import type { EventBus } from "../events";
import type { Logger } from "../../log";
import { now } from "../clock";

/** The source's HTTP Basic credentials: a setting row of their own, never in the URL that is shown. */
const CREDENTIALS_KEY = "source.credentials";

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
  async init(configured: string, keyring: string | null): Promise<SourceState> {
    const { url, credentials } = splitCredentials(configured);
    // Two nodes starting at once both try: the first insert wins, the other's is ignored.
    const row: BootSourceRow = { id: 1, url, keyring, lastFetch: null, error: null, catalogue: null };
    await this.db.write(async (m) => {
      await m.createQueryBuilder().insert().into(BootSourceEntity).values(row).orIgnore().execute();
      if (!credentials) return;
      // The configured credentials go with the configured URL (unless some are stored already).
      const stored = await m.findOneOrFail(BootSourceEntity, { where: { id: 1 } });
      if (stored.url !== url) return;
      const value = JSON.stringify(credentials);
      await m
        .createQueryBuilder()
        .insert()
        .into(SettingEntity)
        .values({ key: CREDENTIALS_KEY, value })
        .orIgnore()
        .execute();
    });
    this.row = await this.db.manager.findOneOrFail(BootSourceEntity, { where: { id: 1 } });
    await this.separateStoredCredentials();
    this.cached = this.row.catalogue ? (JSON.parse(this.row.catalogue) as Catalogue) : null;
    return this.state();
  }

  /** A URL stored with `user:pass@` by an older version: the credentials move to their own row. */
  private async separateStoredCredentials(): Promise<void> {
    const row = this.requireRow();
    const { url, credentials } = splitCredentials(row.url);
    if (!credentials) return;
    await this.db.write(async (m) => {
      await m.update(BootSourceEntity, { id: 1, url: row.url }, { url });
      await this.storeCredentials(m, credentials);
    });
    this.row = { ...row, url };
  }

  private async storeCredentials(m: EntityManager, credentials: SourceCredentials | null): Promise<void> {
    if (credentials === null) await m.delete(SettingEntity, { key: CREDENTIALS_KEY });
    else await m.upsert(SettingEntity, { key: CREDENTIALS_KEY, value: JSON.stringify(credentials) }, ["key"]);
  }

  /** The stored source's credentials, read fresh (another node may have changed the source). */
  async credentials(): Promise<SourceCredentials | null> {
    const row = await this.db.manager.findOne(SettingEntity, { where: { key: CREDENTIALS_KEY } });
    if (!row) return null;
    const parsed = JSON.parse(row.value) as Partial<SourceCredentials>;
    return typeof parsed.username === "string" && typeof parsed.password === "string"
      ? { username: parsed.username, password: parsed.password }
      : null;
  }

  /** `Authorization` for requests to the source (its documents and payloads), or null. */
  async authorization(): Promise<string | null> {
    const credentials = await this.credentials();
    return credentials === null ? null : basicAuthorization(credentials);
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
   * the old source, its catalogue and the selection stay exactly as they were. `alongside` runs in
   * the same transaction (the command's audit row), and its result is returned with the change.
   * `url` carries no credentials (the caller split them off); `credentials` replace the stored ones.
   */
  async update<T>(
    url: string,
    keyring: string | null,
    credentials: SourceCredentials | null,
    alongside: (m: EntityManager) => Promise<T>,
  ): Promise<{ source: SourceState; catalogue: Catalogue; alongside: T }> {
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
    const extra = await this.db.write(async (m) => {
      await m.save(BootSourceEntity, row);
      await this.storeCredentials(m, credentials);
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
