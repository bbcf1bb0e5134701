import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { EntityManager } from "typeorm";
import { CommandError } from "@bootstream/protocol";
import type { Logger } from "../../log";
import type { Database } from "../db/database";

export type NodeRole = "leader" | "follower" | "single";

/**
 * A write refused because this node no longer holds the leader lease it started leading with. Its
 * transaction is rolled back, so a command that meets it did not run: it says so (code `internal`).
 */
export class FencedError extends CommandError {
  constructor(epoch: number, why: string) {
    super(
      "internal",
      `this region node stopped leading (lease epoch ${epoch}: ${why}), so the change was refused and did not run; another node leads within seconds, try again`,
    );
    this.name = "FencedError";
  }
}

export type LeadershipOptions = {
  db: Database;
  leaseMs: number;
  log: Logger;
  /** Starts what only the leader runs. Must be idempotent; a throw steps down. */
  onLead: (epoch: number) => Promise<void>;
  /** Stops it; resolves once nothing of the old term can act any more. */
  onFollow: () => Promise<void>;
  /** Every change of role and of the database's reachability (health, metrics). */
  onChange?: () => void;
};

const RENEW_SQL = `UPDATE leader_lease SET expires_at = now() + $3 * interval '1 millisecond'
  WHERE id = 1 AND holder = $1 AND epoch = $2 RETURNING epoch`;
const ACQUIRE_SQL = `UPDATE leader_lease
  SET holder = $1, epoch = epoch + 1, expires_at = now() + $2 * interval '1 millisecond'
  WHERE id = 1 AND expires_at <= now() RETURNING epoch`;
const RELEASE_SQL = `UPDATE leader_lease SET expires_at = now() WHERE id = 1 AND holder = $1 AND epoch = $2`;
const FENCE_SQL = `SELECT epoch FROM leader_lease
  WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > now() FOR SHARE`;

const MAX_BACKOFF_MS = 30_000;

/**
 * Which region node runs the importer, the schedule and the rack namespace. SQLite is one node, so it
 * always leads ("single"). On PostgreSQL, the leader holds a lease — one row, `leader_lease` — that it
 * renews every third of `LEADER_LEASE` with a conditional UPDATE (only while it is still the holder
 * of the same epoch). A leader that cannot renew within the lease, by its own monotonic clock,
 * steps down: paused, hung, partitioned or cut off from the database, it stops acting before anyone
 * else may take over. A follower takes the lease once it has expired by the database's clock, with a
 * new epoch. Every write of a leader checks (and share-locks) the lease row in its own transaction,
 * so a leader that wakes up after its lease went to another node cannot write anything: it is
 * refused and the node steps down. No exit, no restart: a node rides out a database outage as a
 * follower and leads again when it can.
 */
export class Leadership {
  readonly nodeId = `${hostname().slice(0, 40)}-${process.pid}-${randomBytes(4).toString("hex")}`;
  private current: NodeRole = "follower";
  private epoch = 0;
  /** Monotonic time until which this node may act as leader (start of the last renewal + lease). */
  private validUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private failures = 0;
  private databaseOk = true;
  private logged: NodeRole | null = null;
  /** After stepping down, give the others one lease to take over before trying again. */
  private notBefore = 0;
  private stepping = false;

  constructor(private readonly options: LeadershipOptions) {}

  get role(): NodeRole {
    return this.current;
  }

  get isLeader(): boolean {
    return this.current !== "follower";
  }

  /**
   * Whether this node may announce state now (the event fence, `EventBus.gate`): always alone on
   * SQLite; on a cluster only while it leads and its lease is still valid by its own clock. False from
   * the moment a step-down begins (before the work has stopped) and for a leader that wakes from a
   * pause past its lease before its lease loop notices: nothing of the old term's memory goes out.
   */
  get mayAnnounce(): boolean {
    if (this.current === "single") return true;
    return this.current === "leader" && performance.now() < this.validUntil;
  }

  /** Whether the last lease query reached the database (always true on SQLite). */
  get databaseReachable(): boolean {
    return this.databaseOk;
  }

  get leaseEpoch(): number {
    return this.epoch;
  }

  async start(): Promise<void> {
    if (this.options.db.kind === "sqlite") {
      this.current = "single";
      await this.options.onLead(0);
      this.options.onChange?.();
      return;
    }
    this.loop = this.run();
  }

  /**
   * The leader's work met a lost database connection (the importer mid-run): stop leading now rather
   * than when the next renewal fails or the lease runs out, so nothing of this term writes again
   * (the fence refuses from this moment) and the unfinished import goes to whichever node leads
   * next. No exit: the node follows, and may lead again once the database is back.
   */
  lost(why: string): void {
    if (this.current !== "leader" || this.stepping) return;
    void this.stepDown(why, { release: true });
  }

  /** Lets the lease go (a clean shutdown hands over at once rather than after the lease). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    if (this.current === "leader") await this.stepDown("this region node is stopping", { handOver: true });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const started = performance.now();
      try {
        // A follower waiting out its pause after a step-down asks nothing, so learns nothing either.
        const asked = this.current === "leader" ? await this.renew(started) : await this.acquire(started);
        if (asked) this.reachable(true);
      } catch (error) {
        this.reachable(false, error);
      }
      if (this.stopped) break;
      if (this.current === "leader" && performance.now() >= this.validUntil) {
        await this.stepDown("could not renew the leader lease in time");
      }
      await this.sleep(this.interval());
    }
  }

  /** Renew a third of the lease in; followers look a little more often, backing off while the database is away. */
  private interval(): number {
    const { leaseMs } = this.options;
    if (this.current === "leader") return Math.max(100, Math.floor(leaseMs / 3));
    if (this.failures > 0)
      return Math.min(MAX_BACKOFF_MS, Math.floor(leaseMs / 4) * 2 ** Math.min(this.failures, 6));
    return Math.max(100, Math.floor(leaseMs / 4));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        this.wake = null;
        resolve();
      };
      this.timer = setTimeout(() => this.wake?.(), ms);
    });
  }

  private query<T>(sql: string, params: unknown[]): Promise<T[]> {
    const { leaseMs } = this.options;
    // Never wait on the database longer than a third of the lease for one lease query.
    return new Promise<T[]>((resolve, reject) => {
      const timeout = setTimeout(
        () =>
          reject(new Error(`the database did not answer a lease query within ${Math.floor(leaseMs / 3)} ms`)),
        Math.max(100, Math.floor(leaseMs / 3)),
      );
      this.options.db.source.query(sql, params).then(
        (rows: unknown) => {
          clearTimeout(timeout);
          // TypeORM answers an UPDATE … RETURNING as [rows, count] on PostgreSQL.
          const list = Array.isArray(rows) && Array.isArray(rows[0]) ? rows[0] : rows;
          resolve(list as T[]);
        },
        (error: unknown) => {
          clearTimeout(timeout);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  private async renew(started: number): Promise<boolean> {
    const rows = await this.query<{ epoch: string }>(RENEW_SQL, [
      this.nodeId,
      this.epoch,
      this.options.leaseMs,
    ]);
    if (rows.length === 0) {
      await this.stepDown(`the lease (epoch ${this.epoch}) went to another node`);
      return true;
    }
    this.validUntil = started + this.options.leaseMs;
    return true;
  }

  private async acquire(started: number): Promise<boolean> {
    // Not while a step-down (which may run beside this loop: lost()) is still stopping the work.
    if (started < this.notBefore || this.stepping) return false;
    const rows = await this.query<{ epoch: string }>(ACQUIRE_SQL, [this.nodeId, this.options.leaseMs]);
    const won = rows[0];
    if (!won) {
      this.announce("follower");
      return true;
    }
    this.epoch = Number(won.epoch);
    this.validUntil = started + this.options.leaseMs;
    this.current = "leader";
    this.options.db.setFence((manager) => this.fence(manager));
    this.announce("leader");
    // The engine starts beside the renewals: a slow start must not let the lease lapse.
    const epoch = this.epoch;
    void this.options.onLead(epoch).catch(async (error: unknown) => {
      if (this.current !== "leader" || this.epoch !== epoch) return;
      this.options.log.error({ err: error, epoch }, "could not start leading; stepping down");
      await this.stepDown("the engine did not start", { handOver: true });
    });
    return true;
  }

  /** Inside a write's transaction: the lease is still ours, by our clock and by the database's. */
  private async fence(manager: EntityManager): Promise<void> {
    const epoch = this.epoch;
    if (this.current !== "leader") throw new FencedError(epoch, "it stepped down");
    if (performance.now() >= this.validUntil) {
      this.wake?.();
      throw new FencedError(epoch, "lease not renewed in time");
    }
    const rows = (await manager.query(FENCE_SQL, [this.nodeId, epoch])) as unknown[];
    if (rows.length === 0) {
      this.validUntil = 0;
      this.wake?.();
      throw new FencedError(epoch, "the lease is another node's");
    }
  }

  /**
   * Stops the leader's work. Lost (not renewed, taken, refused): the fence refuses every write of
   * the old term from this moment, before the work has even stopped. Handed over (shutdown, a
   * failed start): the lease is still ours, so the work may finish its writes, then the lease goes.
   * `release` lets the lease go once the work has stopped (best effort: the database may be away),
   * so another node need not wait out the lease.
   */
  private async stepDown(
    why: string,
    { handOver = false, release = handOver }: { handOver?: boolean; release?: boolean } = {},
  ): Promise<void> {
    if (this.current !== "leader" || this.stepping) return;
    this.stepping = true;
    const epoch = this.epoch;
    if (!handOver) this.current = "follower";
    this.options.log.warn({ epoch, reason: why }, "this region node stops leading");
    try {
      await this.options.onFollow();
    } catch (error) {
      this.options.log.error({ err: error }, "stopping the leader's work failed");
    }
    this.current = "follower";
    this.options.db.setFence(null);
    this.notBefore = performance.now() + this.options.leaseMs;
    if (release) await this.query(RELEASE_SQL, [this.nodeId, epoch]).catch(() => undefined);
    this.stepping = false;
    this.logged = null;
    this.options.onChange?.();
  }

  private reachable(ok: boolean, error?: unknown): void {
    if (ok) {
      if (!this.databaseOk) this.options.log.info("the database answers again");
      this.failures = 0;
    } else {
      if (this.databaseOk)
        this.options.log.error({ err: error }, "the database does not answer; retrying with backoff");
      this.failures++;
    }
    if (this.databaseOk !== ok) {
      this.databaseOk = ok;
      this.options.onChange?.();
    }
  }

  /** Says each change of role once. */
  private announce(role: NodeRole): void {
    if (this.logged === role) return;
    this.logged = role;
    if (role === "leader")
      this.options.log.info(
        { epoch: this.epoch, node: this.nodeId },
        "this region node leads: it runs imports, the schedule and the rack namespace",
      );
    else this.options.log.info({ node: this.nodeId }, "another region node leads; following");
    this.options.onChange?.();
  }
}
