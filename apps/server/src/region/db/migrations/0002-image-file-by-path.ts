import type { MigrationInterface, QueryRunner } from "typeorm";

// image_file was keyed by (image_id, version, sha256), so an image kept one path per sha256 and a
// rack's tree lacked the second path of a file two products share (noble's ga and hwe kernels).
// Keyed by path now; the same DDL works on SQLite and PostgreSQL. Existing rows are all distinct by
// path, so they copy over as they are (the next import adds the paths that were missing).
const CREATE = (table: string) => `CREATE TABLE ${table} (
  image_id varchar(200) NOT NULL,
  version varchar(64) NOT NULL,
  path text NOT NULL,
  sha256 varchar(64) NOT NULL,
  size bigint NOT NULL,
  ftype varchar(32) NOT NULL,
  PRIMARY KEY (image_id, version, path)
)`;
const COLUMNS = "image_id, version, path, sha256, size, ftype";

export class ImageFileByPath1764979200000 implements MigrationInterface {
  name = "ImageFileByPath1764979200000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(CREATE("image_file_by_path"));
    await q.query(`INSERT INTO image_file_by_path (${COLUMNS}) SELECT ${COLUMNS} FROM image_file`);
    await q.query("DROP TABLE image_file");
    await q.query("ALTER TABLE image_file_by_path RENAME TO image_file");
    await q.query("CREATE INDEX image_file_sha256 ON image_file (sha256)");
  }

  async down(q: QueryRunner): Promise<void> {
    // Back to one row per sha256 of an image: the first path of each.
    await q.query(`CREATE TABLE image_file_by_sha (
  image_id varchar(200) NOT NULL,
  version varchar(64) NOT NULL,
  sha256 varchar(64) NOT NULL,
  size bigint NOT NULL,
  ftype varchar(32) NOT NULL,
  path text NOT NULL,
  PRIMARY KEY (image_id, version, sha256)
)`);
    await q.query(
      `INSERT INTO image_file_by_sha (image_id, version, sha256, size, ftype, path)
       SELECT image_id, version, sha256, MIN(size), MIN(ftype), MIN(path) FROM image_file
       GROUP BY image_id, version, sha256`,
    );
    await q.query("DROP TABLE image_file");
    await q.query("ALTER TABLE image_file_by_sha RENAME TO image_file");
    await q.query("CREATE INDEX image_file_sha256 ON image_file (sha256)");
  }
}
