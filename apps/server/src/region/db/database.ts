import path from "node:path";
import { DataSource, type EntityManager, type QueryRunner } from "typeorm";
import { ENTITIES } from "./entities";
import { MIGRATIONS } from "./migrations";
import { WriteQueue } from "./write-queue";
import type { Logger } from "../../log";

export type DatabaseOptions = {
  dataDir: string;
  databaseUrl: string | null;
  /** The cluster's leader lease: no PostgreSQL statement or idle transaction may outlive it. */
  leaseMs?: number;
  /** Says when this node waits for another node's migrations. */
  log?: Logger;
};

/** Checks, inside a write's transaction, that this node may still write (the leader lease's fence). */
export type WriteFence = (manager: EntityManager) => Promise<void>;

/** Told the outcome of every write transaction (the region's health listens). */
export type WriteObserver = { writeSucceeded(): void; writeFailed(error: unknown): void };

/** The part of better-sqlite3's connection that tells whether a transaction is open. */
type SqliteHandle = { inTransaction: boolean; exec(sql: string): unknown };

// Any constant works; it only has to be the same on every region node.
export const MIGRATION_LOCK_KEY = 52400001;
/** How often a node waiting for another node's migrations tries the lock again. */
const MIGRATION_LOCK_POLL_MS = 250;
/** How often it says it is still waiting. */
const MIGRATION_WAIT_LOG_MS = 10_000;

/** The session holding the migration lock, from pg_locks (an advisory lock on one int key: objid). */
const MIGRATION_LOCK_HOLDER = `SELECT a.pid, host(a.client_addr) AS address, a.application_name AS application,
       a.backend_start AS since
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1`;

/**
 * The region's database: SQLite by default, PostgreSQL when DATABASE_URL says so.
 * `write` is the only way to change data, so that SQLite's writes are serialised.
 */
export class Database {
  private readonly queue = new WriteQueue();
  private observer: WriteObserver | null = null;
  private fence: WriteFence | null = null;

  private constructor(
    readonly source: DataSource,
    readonly kind: "sqlite" | "postgres",
  ) {}

  static async open(options: DatabaseOptions): Promise<Database> {
    const kind = options.databaseUrl ? "postgres" : "sqlite";
    const source =
      kind === "postgres"
        ? new DataSource({
            type: "postgres",
            url: options.databaseUrl ?? undefined,
            entities: ENTITIES,
            migrations: MIGRATIONS,
            synchronize: false,
            connectTimeoutMS: 5000,
            // A dead peer or a paused node must not hold a connection, a lock or a lease for hours:
            // TCP keepalives notice a vanished server, and no statement, client wait or idle
            // transaction lasts longer than the leader lease (so a paused leader's row locks go too).
            extra: {
              max: 10,
              keepAlive: true,
              keepAliveInitialDelayMillis: 1000,
              connectionTimeoutMillis: 5000,
              query_timeout: Math.max(options.leaseMs ?? 15_000, 5000),
              statement_timeout: Math.max(options.leaseMs ?? 15_000, 5000),
              idle_in_transaction_session_timeout: Math.max(options.leaseMs ?? 15_000, 2000),
            },
          })
        : new DataSource({
            type: "better-sqlite3",
            database: path.join(options.dataDir, "bootstream.db"),
            entities: ENTITIES,
            migrations: MIGRATIONS,
            synchronize: false,
            enableWAL: true,
            timeout: 5000, // busy timeout: a second process (the CLI, a backup) never makes us fail at once
            prepareDatabase: (db: { pragma(sql: string): unknown }) => {
              // WAL + NORMAL is durable across a process crash; only an OS crash can lose the last commit.
              db.pragma("synchronous = NORMAL");
            },
          });
    await source.initialize();
    const database = new Database(source, kind);
    try {
      await database.migrate(options.log);
    } catch (error) {
      await source.destroy().catch(() => undefined);
      throw error;
    }
    return database;
  }

  private async migrate(log: Logger | undefined): Promise<void> {
    if (this.kind === "sqlite") {
      await this.source.runMigrations({ transaction: "all" });
      return;
    }
    // Two region nodes starting at once must not both create the tables: hold a session-level
    // advisory lock on a dedicated connection while the migrations run on another.
    const lock = this.source.createQueryRunner();
    await lock.connect();
    try {
      await this.takeMigrationLock(lock, log);
      await this.source.runMigrations({ transaction: "all" });
    } finally {
      await lock.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
      await lock.release();
    }
  }

  /**
   * Takes the migration lock, waiting for as long as another node holds it. A blocking
   * `pg_advisory_lock` would be cut by the statement and query timeouts (the lease, 15 s), and a
   * node started beside another on a loaded machine would fail its start while the other migrates.
   * So it tries (`pg_try_advisory_lock`, which answers at once) every MIGRATION_LOCK_POLL_MS: the
   * lock is session-level, so a holder that dies or loses its connection releases it, and the
   * next try takes it. While it waits, it logs who holds it, at once and every
   * MIGRATION_WAIT_LOG_MS.
   */
  private async takeMigrationLock(lock: QueryRunner, log: Logger | undefined): Promise<void> {
    const started = Date.now();
    let loggedAt: number | null = null;
    for (;;) {
      const [row] = (await lock.query("SELECT pg_try_advisory_lock($1) AS taken", [MIGRATION_LOCK_KEY])) as {
        taken: boolean;
      }[];
      if (row?.taken) {
        if (loggedAt !== null)
          log?.info(
            { waitedSeconds: Math.round((Date.now() - started) / 1000) },
            "took the migration lock: the other region node's migrations are done",
          );
        return;
      }
      if (loggedAt === null || Date.now() - loggedAt >= MIGRATION_WAIT_LOG_MS) {
        const [holder] = (await lock.query(MIGRATION_LOCK_HOLDER, [MIGRATION_LOCK_KEY])) as Record<
          string,
          unknown
        >[];
        log?.info(
          { holder: holder ?? null, waitedSeconds: Math.round((Date.now() - started) / 1000) },
          loggedAt === null
            ? "waiting for another region node's migrations (it holds the migration lock)"
            : "still waiting for another region node's migrations (it holds the migration lock)",
        );
        loggedAt = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, MIGRATION_LOCK_POLL_MS));
    }
  }

  get manager(): EntityManager {
    return this.source.manager;
  }

  /**
   * While this node leads a cluster, every write first checks (and share-locks) the leader lease in
   * its own transaction: a leader that lost its lease, however long it was paused, writes nothing.
   */
  setFence(fence: WriteFence | null): void {
    this.fence = fence;
  }

  /** One transaction; on SQLite, queued behind every other write. */
  write<T>(job: (manager: EntityManager) => Promise<T>): Promise<T> {
    // The fence in force when the write was asked for: a leader stepping down while the write waits
    // for a connection must not let it through because the fence has been lifted meanwhile.
    const fence = this.fence;
    const tx = () =>
      this.source.transaction(async (manager) => {
        if (fence) await fence(manager);
        return job(manager);
      });
    const sqliteTx = async () => {
      this.closeAbandonedTransaction();
      try {
        return await tx();
      } finally {
        this.closeAbandonedTransaction();
      }
    };
    const result = this.kind === "sqlite" ? this.queue.run(sqliteTx) : retryVictims(tx);
    return result.then(
      (value) => {
        this.observer?.writeSucceeded();
        return value;
      },
      (error: unknown) => {
        this.observer?.writeFailed(error);
        throw error;
      },
    );
  }

  /**
   * SQLite: a transaction whose COMMIT failed (SQLITE_FULL on a full filesystem) can stay open on
   * the one connection after TypeORM gave up on it; every later write would then run inside it,
   * be answered ok, and vanish when the connection closes. Roll such a transaction back.
   */
  private closeAbandonedTransaction(): void {
    const handle = (this.source.driver as unknown as { databaseConnection?: SqliteHandle })
      .databaseConnection;
    if (handle?.inTransaction) handle.exec("ROLLBACK");
  }

  observe(observer: WriteObserver): void {
    this.observer = observer;
  }

  async ping(): Promise<void> {
    await this.source.query("SELECT 1");
  }

  /** Waits for queued writes, then closes the connection(s). */
  async close(): Promise<void> {
    await this.queue.drain();
    if (this.source.isInitialized) await this.source.destroy();
  }
}

/** PostgreSQL's deadlock victim and serialisation failure: the transaction was rolled back whole. */
const RETRYABLE = new Set(["40P01", "40001"]);
/** Attempts of a transaction PostgreSQL chose as a deadlock victim, before its error is the answer. */
export const WRITE_ATTEMPTS = 3;

function retryable(error: unknown): boolean {
  const code =
    (error as { code?: unknown; driverError?: { code?: unknown } } | null)?.driverError?.code ??
    (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && RETRYABLE.has(code);
}

/**
 * Runs a PostgreSQL transaction again when the server rolled it back as a deadlock victim: nothing of
 * it was kept, and its job reads what it changes inside the transaction, so running it again is safe.
 */
async function retryVictims<T>(tx: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await tx();
    } catch (error) {
      if (attempt >= WRITE_ATTEMPTS || !retryable(error)) throw error;
    }
  }
}
