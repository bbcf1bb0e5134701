import { describe, expect, it } from "vitest";
import type { Snapshot } from "@bootstream/protocol";
import { renderStatus } from "./status-table";

const snapshot = (patch: Partial<Snapshot> = {}): Snapshot => ({
  images: [],
  selection: { revision: 0, items: [] },
  settings: { autoImport: true },
  source: { url: "http://mirror/", keyringSet: false, lastFetch: null, error: null },
  racks: [],
  import: { running: false, trigger: null, startedAt: null, finishedAt: null, error: null },
  you: { name: "admin", role: "admin" },
  ...patch,
});

describe("renderStatus", () => {
  it("says first, in the dashboard's words, that the region is degraded", () => {
    const text = renderStatus(
      snapshot({
        health: {
          status: "degraded",
          role: "single",
          checks: { database: "failing", redis: "n/a" },
          errors: { database: "writes failing: SQLITE_FULL: database or disk is full" },
        },
      }),
    );
    expect(text.split("\n")[0]).toBe(
      "Region degraded: database writes failing: SQLITE_FULL: database or disk is full.",
    );
  });

  it("says nothing of health when the region is healthy or does not tell", () => {
    const ok = renderStatus(
      snapshot({
        health: { status: "ok", role: "single", checks: { database: "ok", redis: "n/a" }, errors: {} },
      }),
    );
    expect(ok).not.toContain("degraded");
    expect(renderStatus(snapshot())).not.toContain("degraded");
  });
});
