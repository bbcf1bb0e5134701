import { randomBytes } from "node:crypto";
import type { HealthCheckName, HealthState, RegionRole } from "@bootstream/protocol";

/** While the database check fails, a probe write runs this often until one succeeds. */
export const HEALTH_PROBE_INTERVAL_MS = 5_000;
/**
 * The probe writes (and deletes, in the same transaction) a row this big: a write that needs fresh
 * pages, so a full disk or a full SQLite file fails it, where a `SELECT 1` would still answer.
 */
export const HEALTH_PROBE_BYTES = 64 * 1024;
/** The longest failure message kept (a driver error can carry a whole query). */
export const HEALTH_MESSAGE_MAX = 300;

type Failure = { kind: "write" | "ping" | "external"; message: string };
type Listener = (state: HealthState) => void;

/**
 * SQLite and PostgreSQL errors that say the database cannot take writes (full, read-only, I/O,
 * connection gone), as opposed to an error of the job itself (a constraint, a CommandError).
 */
const SQLITE_STORAGE = /^SQLITE_(FULL|IOERR|CANTOPEN|READONLY|CORRUPT|NOTADB|BUSY|LOCKED|PROTOCOL|NOLFS)/;
// PostgreSQL SQLSTATE classes: 08 connection, 53 insufficient resources (53100 disk full), 57 operator
// intervention (shutdown), 58 system error, XX internal.
const PG_STORAGE = /^(08|53|57|58|XX)/;
const NODE_CONNECTION = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|ENOSPC|EIO|EROFS)$/;
const CONNECTION_MESSAGE = /connection terminated|connection timeout|not queryable|cannot use a pool/i;

export function isStorageError(error: unknown): boolean {
  for (const candidate of [error, (error as { driverError?: unknown } | null)?.driverError]) {
    if (typeof candidate !== "object" || candidate === null) continue;
    const code = (candidate as { code?: unknown }).code;
    if (typeof code === "string") {
      if (SQLITE_STORAGE.test(code) || NODE_CONNECTION.test(code)) return true;
      if (/^[0-9A-Z]{5}$/.test(code) && PG_STORAGE.test(code)) return true;
    }
    const message = (candidate as { message?: unknown }).message;
    if (typeof message === "string" && CONNECTION_MESSAGE.test(message)) return true;
  }
  return false;
}

/** A one-line reason for a person: "SQLITE_FULL: database or disk is full". */
export function describeError(error: unknown): string {
  const inner = (error as { driverError?: unknown } | null)?.driverError ?? error;
  const code = (inner as { code?: unknown } | null)?.code;
  const message = inner instanceof Error ? inner.message : String(inner);
  const text = typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > HEALTH_MESSAGE_MAX ? `${line.slice(0, HEALTH_MESSAGE_MAX - 1)}…` : line;
}

/** The pure rule: what a set of failures and a role make. */
export function healthState(
  role: RegionRole,
  redisConfigured: boolean,
  failures: ReadonlyMap<HealthCheckName, Failure>,
): HealthState {
  const database = failures.get("database");
  const redis = failures.get("redis");
  const errors: HealthState["errors"] = {};
  if (database) errors.database = database.message;
  if (redis) errors.redis = redis.message;
  return {
    status: database || redis ? "degraded" : "ok",
    role,
    checks: {
      database: database ? "failing" : "ok",
      redis: redis ? "failing" : redisConfigured ? "ok" : "n/a",
    },
    errors,
  };
}

export type HealthOptions = {
  /** Whether this node has Redis (REDIS_URL): its check is then "ok" or "failing", else "n/a". */
  redis: boolean;
  role: RegionRole;
  /** A write that needs fresh space; resolves when the database took it. */
  probe?: () => Promise<void>;
  probeIntervalMs?: number;
};

/**
 * The node's health: `/healthz`, the `bootstream_health_degraded` metric, the snapshot's `health` and
 * the dashboard's banner all read it. Parts report to it: the database on every write, the cluster
 * code for Redis and the role.
 */
export class Health {
  private readonly failures = new Map<HealthCheckName, Failure>();
  private role: RegionRole;
  private current: HealthState;
  private readonly listeners: Listener[] = [];
  private probeTimer: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;

  constructor(private readonly options: HealthOptions) {
    this.role = options.role;
    this.current = healthState(this.role, options.redis, this.failures);
  }

  state(): HealthState {
    return this.current;
  }

  /** Called with each new state (only when it changed). */
  subscribe(listener: Listener): () => void {
    this.listeners.push(listener);
    return () => this.listeners.splice(this.listeners.indexOf(listener), 1);
  }

  /** A check fails, e.g. `health.fail("redis", "connection refused")`. */
  fail(check: HealthCheckName, message: string): void {
    this.set(check, { kind: "external", message: describeError(message) });
  }

  /** A check answers again. */
  ok(check: HealthCheckName): void {
    if (!this.failures.has(check)) return;
    this.failures.delete(check);
    this.changed();
  }

  setRole(role: RegionRole): void {
    if (role === this.role) return;
    this.role = role;
    this.changed();
  }

  /** The database's report on each write transaction. */
  writeFailed(error: unknown): void {
    if (!isStorageError(error)) return;
    this.set("database", { kind: "write", message: `writes failing: ${describeError(error)}` });
  }

  writeSucceeded(): void {
    this.ok("database");
  }

  /** `/healthz` pings the database: a failed ping degrades, a good one clears only a failed ping. */
  pingFailed(error: unknown): void {
    this.set("database", { kind: "ping", message: `does not answer: ${describeError(error)}` });
  }

  pingSucceeded(): void {
    if (this.failures.get("database")?.kind === "ping") this.ok("database");
  }

  close(): void {
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  private set(check: HealthCheckName, failure: Failure): void {
    const before = this.failures.get(check);
    if (before?.message === failure.message && before.kind === failure.kind) return;
    this.failures.set(check, failure);
    this.changed();
  }

  private changed(): void {
    this.current = healthState(this.role, this.options.redis, this.failures);
    for (const listener of [...this.listeners]) listener(this.current);
    this.scheduleProbe();
  }

  /** While the database fails, try a probe write now and then: the region recovers by itself. */
  private scheduleProbe(): void {
    const { probe } = this.options;
    if (!probe || this.closed || this.probeTimer || this.probing || !this.failures.has("database")) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      this.probing = true;
      probe()
        .then(
          () => this.ok("database"),
          () => undefined, // the database reported it (or it was not a storage error): try again later
        )
        .finally(() => {
          this.probing = false;
          this.scheduleProbe();
        });
    }, this.options.probeIntervalMs ?? HEALTH_PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }
}

/** A random payload of HEALTH_PROBE_BYTES (random, so no layer can make it smaller). */
export function probePayload(): string {
  return randomBytes(HEALTH_PROBE_BYTES / 2).toString("hex");
}
