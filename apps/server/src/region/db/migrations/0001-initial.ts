import { Table, type MigrationInterface, type QueryRunner, type TableColumnOptions } from "typeorm";

// Built with TypeORM's Table API so one migration produces the right DDL for SQLite and PostgreSQL.
// Timestamps are ISO 8601 strings: identical on both databases and exactly what the contract sends.

const text = (name: string, nullable = false): TableColumnOptions => ({
  name,
  type: "text",
  isNullable: nullable,
});
const str = (name: string, length: number, nullable = false): TableColumnOptions => ({
  name,
  type: "varchar",
  length: String(length),
  isNullable: nullable,
});
const time = (name: string, nullable = false) => str(name, 32, nullable);
const serial = (name: string): TableColumnOptions => ({
  name,
  type: "integer",
  isPrimary: true,
  isGenerated: true,
  generationStrategy: "increment",
});

export class Initial1764115200000 implements MigrationInterface {
  name = "Initial1764115200000";

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: "token",
        columns: [
          { ...str("name", 64), isPrimary: true },
          str("role", 16),
          { ...str("hash", 64), isUnique: true },
          time("created_at"),
          time("revoked_at", true),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: "boot_source",
        columns: [
          { name: "id", type: "integer", isPrimary: true },
          text("url"),
          text("keyring", true),
          time("last_fetch", true),
          text("error", true),
          text("catalogue", true),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: "selection",
        columns: [
          { name: "id", type: "integer", isPrimary: true },
          { name: "revision", type: "integer" },
          text("items"),
          str("updated_by", 64),
          time("updated_at"),
        ],
      }),
    );
    await q.createTable(
      new Table({ name: "setting", columns: [{ ...str("key", 64), isPrimary: true }, text("value")] }),
    );
    await q.createTable(
      new Table({
        name: "image",
        columns: [
          { ...str("id", 200), isPrimary: true },
          str("os", 64),
          str("release", 64),
          str("arch", 64),
          str("title", 200),
          str("version", 64, true),
          str("target_version", 64, true),
          str("state", 16),
          { name: "bytes_total", type: "bigint" },
          { name: "bytes_done", type: "bigint" },
          text("error", true),
          time("synced_at", true),
          time("updated_at"),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: "image_file",
        columns: [
          { ...str("image_id", 200), isPrimary: true },
          { ...str("version", 64), isPrimary: true },
          { ...str("sha256", 64), isPrimary: true },
          { name: "size", type: "bigint" },
          str("ftype", 32),
          text("path"),
        ],
        indices: [{ name: "image_file_sha256", columnNames: ["sha256"] }],
      }),
    );
    await q.createTable(
      new Table({
        name: "rack",
        columns: [
          { ...str("name", 64), isPrimary: true },
          time("first_seen"),
          time("last_seen"),
          { name: "online", type: "boolean" },
          time("last_sync", true),
          text("error", true),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: "rack_file",
        columns: [
          { ...str("rack_name", 64), isPrimary: true },
          { ...str("sha256", 64), isPrimary: true },
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: "import_run",
        columns: [
          serial("id"),
          str("trigger", 16),
          time("started_at"),
          time("finished_at", true),
          text("error", true),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: "audit",
        columns: [serial("id"), time("at"), str("actor", 64), str("action", 64), text("detail")],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    for (const name of [
      "audit",
      "import_run",
      "rack_file",
      "rack",
      "image_file",
      "image",
      "setting",
      "selection",
      "boot_source",
      "token",
    ]) {
      await q.dropTable(name);
    }
  }
}
