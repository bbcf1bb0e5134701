import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * The cluster's leader lease (PostgreSQL only: SQLite is one node, which always leads). One row:
 * who holds the lease, its epoch (one more at every change of holder, never reused) and when it
 * expires by the database's clock, so the nodes' clocks never have to agree. The manifest
 * generation lives here too, so it keeps growing across leaders.
 */
export class LeaderLease1796083200000 implements MigrationInterface {
  name = "LeaderLease1796083200000";

  async up(q: QueryRunner): Promise<void> {
    if (q.connection.options.type !== "postgres") return;
    await q.query(`CREATE TABLE leader_lease (
      id integer PRIMARY KEY CHECK (id = 1),
      holder varchar(64) NOT NULL DEFAULT '',
      epoch bigint NOT NULL DEFAULT 0,
      expires_at timestamptz NOT NULL DEFAULT 'epoch',
      manifest_generation bigint NOT NULL DEFAULT 0
    )`);
    await q.query(`INSERT INTO leader_lease (id) VALUES (1)`);
  }

  async down(q: QueryRunner): Promise<void> {
    if (q.connection.options.type !== "postgres") return;
    await q.query(`DROP TABLE leader_lease`);
  }
}
