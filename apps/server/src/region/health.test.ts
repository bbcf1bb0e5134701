import { describe, expect, it } from "vitest";
import { Health, HEALTH_MESSAGE_MAX, describeError, healthState, isStorageError } from "./health";

const coded = (code: string, message = "boom") => Object.assign(new Error(message), { code });

describe("isStorageError", () => {
  it.each<[string, unknown, boolean]>([
    ["SQLITE_FULL", coded("SQLITE_FULL", "database or disk is full"), true],
    ["SQLITE_IOERR_WRITE", coded("SQLITE_IOERR_WRITE"), true],
    ["SQLITE_READONLY", coded("SQLITE_READONLY"), true],
    ["wrapped by TypeORM", { message: "x", driverError: coded("SQLITE_FULL") }, true],
    ["PostgreSQL disk full 53100", coded("53100"), true],
    ["PostgreSQL admin shutdown 57P01", coded("57P01"), true],
    ["PostgreSQL connection failure 08006", coded("08006"), true],
    ["connection refused", coded("ECONNREFUSED"), true],
    ["pool connection terminated", new Error("Connection terminated unexpectedly"), true],
    ["SQLITE_CONSTRAINT is the job's own", coded("SQLITE_CONSTRAINT_PRIMARYKEY"), false],
    ["PostgreSQL unique violation 23505", coded("23505"), false],
    ["PostgreSQL serialization failure 40001", coded("40001"), false],
    ["a CommandError", coded("conflict", "stale revision"), false],
    ["a plain error", new Error("bug"), false],
    ["not an error", "nope", false],
    ["null", null, false],
  ])("%s", (_name, error, expected) => {
    expect(isStorageError(error)).toBe(expected);
  });
});

describe("describeError", () => {
  it("puts the code first, once, on one line, bounded", () => {
    expect(describeError(coded("SQLITE_FULL", "database or disk is full"))).toBe(
      "SQLITE_FULL: database or disk is full",
    );
    expect(describeError(coded("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"))).toBe(
      "connect ECONNREFUSED 127.0.0.1:5432",
    );
    expect(describeError("two\n  lines")).toBe("two lines");
    expect(describeError("x".repeat(1000))).toHaveLength(HEALTH_MESSAGE_MAX);
  });
});

describe("healthState", () => {
  it.each<[string, Parameters<typeof healthState>, ReturnType<typeof healthState>]>([
    [
      "single node, all well",
      ["single", false, new Map()],
      { status: "ok", role: "single", checks: { database: "ok", redis: "n/a" }, errors: {} },
    ],
    [
      "cluster leader, all well",
      ["leader", true, new Map()],
      { status: "ok", role: "leader", checks: { database: "ok", redis: "ok" }, errors: {} },
    ],
    [
      "database write failing",
      ["single", false, new Map([["database", { kind: "write", message: "writes failing: full" }]])],
      {
        status: "degraded",
        role: "single",
        checks: { database: "failing", redis: "n/a" },
        errors: { database: "writes failing: full" },
      },
    ],
    [
      "redis failing on a follower",
      ["follower", true, new Map([["redis", { kind: "external", message: "connection refused" }]])],
      {
        status: "degraded",
        role: "follower",
        checks: { database: "ok", redis: "failing" },
        errors: { redis: "connection refused" },
      },
    ],
  ])("%s", (_name, args, expected) => {
    expect(healthState(...args)).toEqual(expected);
  });
});

describe("Health", () => {
  it("tells each change once, in order, and clears what a later success clears", () => {
    const health = new Health({ redis: true, role: "follower" });
    const seen: string[] = [];
    health.subscribe((s) => seen.push(`${s.status}/${s.role}/${s.checks.database}/${s.checks.redis}`));
    health.writeFailed(coded("SQLITE_CONSTRAINT")); // the job's own error: no change
    health.writeFailed(coded("SQLITE_FULL", "database or disk is full"));
    health.writeFailed(coded("SQLITE_FULL", "database or disk is full")); // same: no new event
    health.pingSucceeded(); // a ping does not clear a failed write
    health.writeSucceeded();
    health.writeSucceeded(); // already ok: no event
    health.pingFailed(coded("ECONNREFUSED"));
    health.pingSucceeded();
    health.fail("redis", "connection refused");
    health.setRole("leader");
    health.setRole("leader");
    health.ok("redis");
    expect(seen).toEqual([
      "degraded/follower/failing/ok",
      "ok/follower/ok/ok",
      "degraded/follower/failing/ok",
      "ok/follower/ok/ok",
      "degraded/follower/ok/failing",
      "degraded/leader/ok/failing",
      "ok/leader/ok/ok",
    ]);
    health.close();
  });

  it("probes while the database fails and recovers when a probe succeeds", async () => {
    let attempts = 0;
    const health = new Health({
      redis: false,
      role: "single",
      probeIntervalMs: 1,
      probe: async () => {
        attempts++;
        if (attempts < 3) throw coded("SQLITE_FULL");
      },
    });
    const recovered = new Promise<void>((resolve) =>
      health.subscribe((s) => {
        if (s.status === "ok") resolve();
      }),
    );
    health.writeFailed(coded("SQLITE_FULL"));
    await recovered;
    expect(attempts).toBe(3);
    health.close();
  });
});
