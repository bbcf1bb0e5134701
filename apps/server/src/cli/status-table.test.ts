import { describe, expect, it } from "vitest";
import { IDLE_VERIFY, type ImageState, type Snapshot } from "@bootstream/protocol";
import { renderStatus } from "./status-table";

const snapshot = (patch: Partial<Snapshot> = {}): Snapshot => ({
  images: [],
  selection: { revision: 0, items: [] },
  settings: { autoImport: true, bandwidthLimit: null, importWindow: null },
  source: { url: "http://mirror/", keyringSet: false, lastFetch: null, error: null },
  racks: [],
  import: { running: false, trigger: null, startedAt: null, finishedAt: null, error: null },
  verify: IDLE_VERIFY,
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

describe("renderStatus speaks the dashboard's words and units", () => {
  it("shows the shared status wording and IEC sizes", () => {
    const image = {
      id: "ubuntu/noble/amd64",
      os: "ubuntu",
      release: "noble",
      arch: "amd64",
      title: "24.04 LTS",
      version: "20250709",
      state: "downloading" as const,
      bytesTotal: 58_700_000,
      bytesDone: 24_654_000,
      racks: { synced: 0, total: 1, syncing: 0, offline: 0, failed: 0, error: null },
      error: null,
      warning: null,
      next: null,
      syncedAt: null,
      updatedAt: "2025-07-09T10:00:00.000Z",
    };
    const row = renderStatus(snapshot({ images: [image] }))
      .split("\n")
      .find((line) => line.startsWith("ubuntu/noble/amd64"));
    expect(row).toMatch(/ 56\.0 MiB +0\/1 +— +Downloading 42%$/);
  });

  it("shows each image's version, its next version's progress and its warning", () => {
    const text = renderStatus(
      snapshot({
        images: [
          {
            id: "ubuntu/noble/amd64",
            os: "ubuntu",
            release: "noble",
            arch: "amd64",
            title: "24.04 LTS",
            version: "20250615",
            state: "synced",
            bytesTotal: 1024,
            bytesDone: 1024,
            racks: { synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null },
            error: null,
            warning: "not offered by the source; keeping 20250615",
            next: { version: "20250812", state: "available", bytesTotal: 0, bytesDone: 0, error: null },
            syncedAt: null,
            updatedAt: "2025-08-12T00:00:00.000Z",
          },
        ],
      }),
    );
    const row = text.split("\n").find((line) => line.startsWith("ubuntu/noble/amd64"))!;
    expect(row).toContain("20250615");
    expect(row).toContain("update available: 20250812");
    expect(row).toContain("WARNING: not offered by the source; keeping 20250615");
  });
});

describe("renderStatus counts racks as the dashboard does", () => {
  const image = (racks: ImageState["racks"]) =>
    snapshot({
      images: [
        {
          id: "ubuntu/noble/amd64",
          os: "ubuntu",
          release: "noble",
          arch: "amd64",
          title: "24.04 LTS",
          version: "20250709",
          state: "rack-synced" as const,
          bytesTotal: 1024,
          bytesDone: 1024,
          racks,
          error: null,
          warning: null,
          next: null,
          syncedAt: null,
          updatedAt: "2025-07-09T10:00:00.000Z",
        },
      ],
    });
  it.each([
    [{ synced: 2, total: 2, syncing: 0, offline: 0, failed: 0, error: null }, "2/2"],
    [{ synced: 1, total: 1, syncing: 0, offline: 1, failed: 0, error: null }, "1/2 · 1 offline"],
    [{ synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null }, "—"],
  ])("racks %o read %s", (racks, text) => {
    const row = renderStatus(image(racks))
      .split("\n")
      .find((line) => line.startsWith("ubuntu/noble/amd64"));
    expect(row).toContain(`  ${text}  `);
  });
});

describe("renderStatus shows when each image's served version synced", () => {
  const NOW = Date.parse("2025-07-09T13:00:00.000Z");
  const image = (patch: Partial<ImageState>): ImageState => ({
    id: "ubuntu/noble/amd64",
    os: "ubuntu",
    release: "noble",
    arch: "amd64",
    title: "24.04 LTS",
    version: "20250709",
    state: "synced",
    bytesTotal: 1024,
    bytesDone: 1024,
    racks: { synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null },
    error: null,
    warning: null,
    next: null,
    syncedAt: null,
    updatedAt: "2025-07-09T12:59:00.000Z",
    ...patch,
  });
  it.each<[string, Partial<ImageState>, string]>([
    [
      "synced 3 h ago (an update started since: updatedAt moved)",
      { syncedAt: "2025-07-09T10:00:00.000Z" },
      "3 h ago",
    ],
    ["nothing served yet", { state: "downloading", bytesDone: 10 }, "—"],
  ])("%s", (_name, patch, text) => {
    const lines = renderStatus(snapshot({ images: [image(patch)] }), NOW).split("\n");
    const header = lines.find((line) => line.startsWith("IMAGE"))!;
    const row = lines.find((line) => line.startsWith("ubuntu/noble/amd64"))!;
    const at = header.indexOf("LAST SYNCED");
    expect(at).toBeGreaterThan(header.indexOf("RACKS"));
    expect(row.slice(at).startsWith(`${text}  `)).toBe(true);
  });
});
