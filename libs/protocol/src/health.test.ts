import { describe, expect, it } from "vitest";
import { degradedText } from "./health";
import type { HealthState } from "./state";

const ok: HealthState = {
  status: "ok",
  role: "single",
  checks: { database: "ok", redis: "n/a" },
  errors: {},
};

describe("degradedText", () => {
  it.each<[string, HealthState | null, string | null]>([
    ["no health yet", null, null],
    ["healthy", ok, null],
    [
      "database writes failing",
      {
        ...ok,
        status: "degraded",
        checks: { database: "failing", redis: "n/a" },
        errors: { database: "writes failing: SQLITE_FULL: database or disk is full" },
      },
      "Region degraded: database writes failing: SQLITE_FULL: database or disk is full",
    ],
    [
      "both, in a fixed order",
      {
        status: "degraded",
        role: "follower",
        checks: { database: "failing", redis: "failing" },
        errors: { redis: "connection refused", database: "does not answer: ECONNREFUSED" },
      },
      "Region degraded: database does not answer: ECONNREFUSED; redis connection refused",
    ],
    [
      "a failing check without a reason",
      { ...ok, status: "degraded", checks: { database: "ok", redis: "failing" } },
      "Region degraded: redis failing",
    ],
  ])("%s", (_name, health, expected) => {
    expect(degradedText(health)).toBe(expected);
  });
});
