import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Where each region node of a cluster is reached (PostgreSQL only: SQLite is one node). Every node
 * upserts its row (`ADVERTISE_URL`) a few times a lease; `seen_at` is the database's clock, so the
 * nodes' clocks never have to agree. Peers fetch verified files from each other through these URLs.
 */
export class RegionNode1796256000000 implements MigrationInterface {
  name = "RegionNode1796256000000";

  async up(q: QueryRunner): Promise<void> {
    if (q.connection.options.type !== "postgres") return;
    await q.query(`CREATE TABLE region_node (
      id varchar(64) PRIMARY KEY,
      url text NOT NULL,
      seen_at timestamptz NOT NULL DEFAULT now()
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    if (q.connection.options.type !== "postgres") return;
    await q.query(`DROP TABLE region_node`);
  }
}
