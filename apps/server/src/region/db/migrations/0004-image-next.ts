import type { MigrationInterface, QueryRunner } from "typeorm";

// The contract's ImageState.next and .warning: the newer version beside a held one gets its own
// state, bytes and error, and a warning ("not offered by …; keeping V", "update failed: …") is no
// longer an error on a synced image. Same DDL on SQLite and PostgreSQL.
const COLUMNS = [
  "next_state varchar(16)",
  "next_bytes_total bigint NOT NULL DEFAULT 0",
  "next_bytes_done bigint NOT NULL DEFAULT 0",
  "next_error text",
  "warning text",
];

export class ImageNext1796169600000 implements MigrationInterface {
  name = "ImageNext1796169600000";

  async up(q: QueryRunner): Promise<void> {
    for (const column of COLUMNS) await q.query(`ALTER TABLE image ADD COLUMN ${column}`);
    // A synced image's error was a warning; a synced image with a target was downloading it.
    await q.query(
      "UPDATE image SET warning = error, error = NULL WHERE state = 'synced' AND error IS NOT NULL",
    );
    await q.query(
      "UPDATE image SET next_state = 'queued' WHERE state = 'synced' AND target_version IS NOT NULL",
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query("UPDATE image SET error = warning WHERE warning IS NOT NULL AND error IS NULL");
    for (const column of COLUMNS) await q.query(`ALTER TABLE image DROP COLUMN ${column.split(" ")[0]}`);
  }
}
