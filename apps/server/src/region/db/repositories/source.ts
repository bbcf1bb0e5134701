import type { SourceCredentials } from "@bootstream/images";
import type { EntityManager } from "typeorm";
import { BootSourceEntity, SettingEntity, type BootSourceRow } from "../entities";

export type { BootSourceRow };

/** The source's HTTP Basic credentials: a setting row of their own, never in the URL that is shown. */
const CREDENTIALS_KEY = "source.credentials";

/**
 * The one `boot_source` row and the source's credentials. Writes are `UPDATE … WHERE`, never a
 * read-modify-write of the row.
 */
export class SourceRepository {
  constructor(private readonly m: EntityManager) {}

  /**
   * First start stores the configured source; another node's (or an earlier start's) stands. The
   * configured credentials go with the configured URL (unless some are stored already).
   */
  async ensure(row: BootSourceRow, credentials: SourceCredentials | null): Promise<void> {
    await this.m.createQueryBuilder().insert().into(BootSourceEntity).values(row).orIgnore().execute();
    if (!credentials) return;
    const stored = await this.get();
    if (stored?.url !== row.url) return;
    await this.m
      .createQueryBuilder()
      .insert()
      .into(SettingEntity)
      .values({ key: CREDENTIALS_KEY, value: JSON.stringify(credentials) })
      .orIgnore()
      .execute();
  }

  async get(): Promise<BootSourceRow | null> {
    return this.m.findOne(BootSourceEntity, { where: { id: 1 } });
  }

  /** An admin points the region elsewhere: the whole row and the credentials are replaced. */
  async replace(row: Omit<BootSourceRow, "id">, credentials: SourceCredentials | null): Promise<void> {
    await this.m.update(BootSourceEntity, { id: 1 }, row);
    await this.setCredentials(credentials);
  }

  /** A URL stored with `user:pass@` by an older version: the credentials move to their own row. */
  async separateCredentials(storedUrl: string, url: string, credentials: SourceCredentials): Promise<void> {
    await this.m.update(BootSourceEntity, { id: 1, url: storedUrl }, { url });
    await this.setCredentials(credentials);
  }

  async credentials(): Promise<SourceCredentials | null> {
    const row = await this.m.findOne(SettingEntity, { where: { key: CREDENTIALS_KEY } });
    if (!row) return null;
    const parsed = JSON.parse(row.value) as Partial<SourceCredentials>;
    return typeof parsed.username === "string" && typeof parsed.password === "string"
      ? { username: parsed.username, password: parsed.password }
      : null;
  }

  private async setCredentials(credentials: SourceCredentials | null): Promise<void> {
    if (credentials === null) await this.m.delete(SettingEntity, { key: CREDENTIALS_KEY });
    else
      await this.m.upsert(SettingEntity, { key: CREDENTIALS_KEY, value: JSON.stringify(credentials) }, [
        "key",
      ]);
  }

  /**
   * What a read found, only while the stored source is still the one read (`WHERE url = …`): a
   * `source:update` committed meanwhile is never reverted. Returns whether the row was written.
   */
  async recordRead(
    url: string,
    fields: Partial<Pick<BootSourceRow, "lastFetch" | "error" | "catalogue">>,
  ): Promise<boolean> {
    const result = await this.m.update(BootSourceEntity, { id: 1, url }, fields);
    return Boolean(result.affected);
  }
}
