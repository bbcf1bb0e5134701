import pg from "pg";
import type { Logger } from "../../log";

// Any constant works; it only has to be the same on every region node (and differ from the migration lock).
const LEADER_LOCK_KEY = 52400002;
const RETRY_MS = 3000;

/**
 * Which region node runs the importer, the schedule and the rack namespace. SQLite is one node, so it
 * always leads. On PostgreSQL the leader holds a session advisory lock on a connection of its own:
 * if that node dies, PostgreSQL drops its session and the lock, and a follower takes over within
 * seconds. A leader that loses its connection exits (its supervisor restarts it as a follower)
 * rather than risk two importers writing one store.
 */
export class Leadership {
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private leading = false;
  private stopped = false;

  constructor(
    private readonly databaseUrl: string | null,
    private readonly log: Logger,
    private readonly onLead: () => Promise<void>,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  async start(): Promise<void> {
    if (!this.databaseUrl) {
      this.leading = true;
      await this.onLead();
      return;
    }
    this.client = new pg.Client({ connectionString: this.databaseUrl, keepAlive: true });
    this.client.on("error", (error) => this.lost(error));
    await this.client.connect();
    await this.attempt();
  }

  private async attempt(): Promise<void> {
    if (this.stopped || !this.client) return;
    try {
      const result = await this.client.query<{ locked: boolean }>(
        "SELECT pg_try_advisory_lock($1) AS locked",
        [LEADER_LOCK_KEY],
      );
      if (result.rows[0]?.locked) {
        this.leading = true;
        this.log.info("this region node leads: it runs imports, the schedule and the rack namespace");
        await this.lead();
        return;
      }
    } catch (error) {
      this.lost(error);
      return;
    }
    if (!this.timer) this.log.info("another region node leads; following");
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.attempt();
    }, RETRY_MS);
  }

  /** A leader that cannot start its engine must not hold the lock: exit, and let another node lead. */
  private async lead(): Promise<void> {
    try {
      await this.onLead();
    } catch (error) {
      this.log.fatal({ err: error }, "could not start leading; exiting so another node can lead");
      process.exit(1);
    }
    this.watchLock();
  }

  /**
   * A half-open connection could leave PostgreSQL thinking we are gone (and another node leading)
   * while we import on. Check the lock's connection every few seconds; if it does not answer, exit.
   */
  private watchLock(): void {
    if (!this.client) return;
    const client = this.client;
    this.heartbeat = setInterval(() => {
      const timeout = setTimeout(
        () => this.lost(new Error("the leader lock's connection did not answer in 10 s")),
        10_000,
      );
      client.query("SELECT 1").then(
        () => clearTimeout(timeout),
        (error: unknown) => {
          clearTimeout(timeout);
          this.lost(error);
        },
      );
    }, 5000);
  }

  private lost(error: unknown): void {
    if (this.stopped) return;
    if (this.leading) {
      this.log.fatal(
        { err: error },
        "lost the leader lock's database connection; exiting so another node can lead",
      );
      process.exit(1);
    }
    this.log.error({ err: error }, "leader election connection failed; retrying");
    this.client = null;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.client = new pg.Client({ connectionString: this.databaseUrl!, keepAlive: true });
      this.client.on("error", (e) => this.lost(e));
      this.client.connect().then(
        () => this.attempt(),
        (e: unknown) => this.lost(e),
      );
    }, RETRY_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.client?.end().catch(() => undefined);
  }
}
