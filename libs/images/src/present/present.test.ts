import { describe, expect, it } from "vitest";
import type { ImageState } from "../model";
import {
  etaSeconds,
  formatAgo,
  formatBytes,
  formatEta,
  formatLastSynced,
  formatRate,
  formatTime,
  importEndKind,
  importEndNote,
  importEndText,
  isEol,
  percent,
  racksText,
  releaseLabel,
  statusKind,
  statusLine,
  statusText,
  troubleText,
  statusNews,
  updateText,
  summarize,
  summaryText,
  tabTitle,
  type StatusKind,
} from "./index";

function image(patch: Partial<ImageState> = {}): ImageState {
  return {
    id: "ubuntu/noble/amd64",
    os: "ubuntu",
    release: "noble",
    arch: "amd64",
    title: "24.04 LTS",
    version: "20250709",
    state: "queued",
    bytesTotal: 1000,
    bytesDone: 0,
    racks: { synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null },
    error: null,
    warning: null,
    next: null,
    syncedAt: null,
    updatedAt: "2025-07-09T10:00:00.000Z",
    ...patch,
  };
}

/** An image's rack counts: two racks, none holding, pulling or failed, unless `patch` says so. */
const racks = (patch: Partial<ImageState["racks"]>): ImageState["racks"] => ({
  synced: 0,
  total: 2,
  syncing: 0,
  offline: 0,
  failed: 0,
  error: null,
  ...patch,
});

describe("statusText (MAAS's words)", () => {
  it.each([
    [{ state: "queued" }, "Queued for download"],
    [{ state: "downloading", bytesDone: 420 }, "Downloading 42%"],
    [{ state: "downloading", bytesDone: 999 }, "Downloading 99%"],
    [{ state: "downloading", bytesTotal: 0 }, "Downloading 0%"],
    [
      { state: "synced", racks: { synced: 0, total: 2, syncing: 0, offline: 0, failed: 0, error: null } },
      "Waiting for rack controller(s) to sync",
    ],
    [
      { state: "synced", racks: { synced: 1, total: 2, syncing: 0, offline: 0, failed: 0, error: null } },
      "Syncing to rack controller(s)",
    ],
    [
      { state: "synced", racks: { synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null } },
      "Synced",
    ],
    [
      { state: "synced", racks: { synced: 2, total: 2, syncing: 0, offline: 0, failed: 0, error: null } },
      "Synced",
    ],
    [
      {
        state: "rack-synced",
        racks: { synced: 2, total: 2, syncing: 0, offline: 0, failed: 0, error: null },
      },
      "Synced",
    ],
    [{ state: "failed", error: "sha256 mismatch" }, "Failed: sha256 mismatch"],
    [{ state: "failed", error: null }, "Failed: unknown error"],
  ] as [Partial<ImageState>, string][])("%o → %s", (patch, text) => {
    expect(statusText(image(patch))).toBe(text);
  });
});

describe("statusText when racks fail to sync an image (never 'Waiting' then)", () => {
  const ENOSPC = "1 of 4 file(s) could not be downloaded; kept the published set of generation 3: ENOSPC";
  it.each<[string, ImageState["racks"], string, StatusKind]>([
    ["no rack has tried yet", racks({}), "Waiting for rack controller(s) to sync", "waiting"],
    [
      "both racks tried and failed: how many, and the first error",
      racks({ failed: 2, error: ENOSPC }),
      `Sync failed on 2 rack controllers: ${ENOSPC}`,
      "rack-failed",
    ],
    [
      "the one online rack failed (an offline one does not count)",
      racks({ total: 1, offline: 1, failed: 1, error: "connect ECONNREFUSED" }),
      "Sync failed on 1 rack controller: connect ECONNREFUSED",
      "rack-failed",
    ],
    [
      "one failed, the other has not tried yet: still every rack that tried",
      racks({ failed: 1, error: "x" }),
      "Sync failed on 1 rack controller: x",
      "rack-failed",
    ],
    [
      "a failed rack without a reason",
      racks({ failed: 2 }),
      "Sync failed on 2 rack controllers: unknown error",
      "rack-failed",
    ],
    [
      "one failed, the other pulls it now: on its way, and the failure said",
      racks({ failed: 1, syncing: 1, error: "x" }),
      "Syncing to rack controller(s) · failed on 1 rack controller: x",
      "syncing",
    ],
    [
      "one failed, the other holds it: nothing moves, so the failure is the news",
      racks({ failed: 1, synced: 1, error: "x" }),
      "Sync failed on 1 rack controller (synced on 1): x",
      "rack-failed",
    ],
    [
      "one holds it, the other has not pulled it yet: on its way",
      racks({ synced: 1 }),
      "Syncing to rack controller(s)",
      "syncing",
    ],
  ])("%s", (_name, counts, text, kind) => {
    const served = image({ state: "synced", racks: counts });
    expect(statusText(served)).toBe(text);
    expect(statusKind(served)).toBe(kind);
  });

  it("counts them apart in the summary", () => {
    const images = [
      image({ id: "a", state: "synced", racks: racks({ failed: 2, error: "x" }) }),
      image({ id: "b", state: "synced", racks: racks({}) }),
    ];
    expect(summarize(images)).toMatchObject({ racks: 1, racksFailed: 1 });
    expect(summaryText(summarize(images))).toBe("2 images · 1 syncing to racks · 1 failed on racks");
  });
});

describe("formatLastSynced", () => {
  const NOW = Date.parse("2026-12-03T12:00:00.000Z");
  const HOUR = 3_600_000;
  it.each<[string | null, string]>([
    [null, "—"],
    ["not a date", "—"],
    [new Date(NOW - 10_000).toISOString(), "just now"],
    [new Date(NOW - 3 * HOUR).toISOString(), "3 h ago"],
    [new Date(NOW - 6 * 24 * HOUR).toISOString(), "6 days ago"],
    // Older than a week: the date, as formatTime writes it (local time).
    [new Date(NOW - 8 * 24 * HOUR).toISOString(), formatTime(new Date(NOW - 8 * 24 * HOUR).toISOString())],
  ])("%s → %s", (iso, text) => {
    expect(formatLastSynced(iso, NOW)).toBe(text);
  });
  it("writes an old one as a date", () => {
    expect(formatLastSynced("2026-01-01T12:00:00.000Z", NOW)).toMatch(/^2026-01-0[12] \d\d:\d\d$/);
  });
});

describe("updates, warnings and offline racks", () => {
  const next = (patch: Partial<NonNullable<ImageState["next"]>>): ImageState["next"] => ({
    version: "20250812",
    state: "available",
    bytesTotal: 1000,
    bytesDone: 0,
    error: null,
    ...patch,
  });
  const served = {
    state: "synced",
    racks: { synced: 2, total: 2, syncing: 0, offline: 0, failed: 0, error: null },
  } as const;
  it.each([
    [{ ...served }, null, "Synced"],
    [{ ...served, next: next({}) }, "update available: 20250812", "Synced · update available: 20250812"],
    [
      { ...served, next: next({ state: "queued" }) },
      "update to 20250812 queued",
      "Synced · update to 20250812 queued",
    ],
    [
      { ...served, next: next({ state: "downloading", bytesDone: 420 }) },
      "updating to 20250812 42%",
      "Synced · updating to 20250812 42%",
    ],
    [
      { ...served, next: next({ state: "failed", error: "sha256 mismatch" }) },
      "update to 20250812 failed: sha256 mismatch",
      "Synced · update to 20250812 failed: sha256 mismatch",
    ],
    // Not served yet: the first import's own words, no update clause.
    [
      { state: "downloading", bytesDone: 420, next: next({}) },
      "update available: 20250812",
      "Downloading 42%",
    ],
  ] as [Partial<ImageState>, string | null, string][])("%o → %s / %s", (patch, update, line) => {
    expect(updateText(image(patch))).toBe(update);
    expect(statusLine(image(patch))).toBe(line);
  });

  it.each([
    [{ synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null }, "—"],
    [{ synced: 2, total: 2, syncing: 0, offline: 0, failed: 0, error: null }, "2/2"],
    [{ synced: 1, total: 1, syncing: 0, offline: 1, failed: 0, error: null }, "1/2 · 1 offline"],
    [{ synced: 0, total: 0, syncing: 0, offline: 1, failed: 0, error: null }, "0/1 · 1 offline"],
  ])("racksText(%o) → %s", (racks, text) => {
    expect(racksText(racks)).toBe(text);
  });

  it("says what is wrong in one line", () => {
    const images = [
      image({ warning: "not offered by http://m/; keeping 20250615" }),
      image({ state: "synced", next: next({ state: "failed", error: "x" }) }),
      image({}),
    ];
    const racks = [{ online: true }, { online: false }];
    expect(troubleText(images, racks)).toBe("1 warning · 1 update failed · 1 of 2 racks offline");
    const failing = { synced: 1, total: 2, syncing: 0, offline: 0, failed: 1, error: "x" };
    const mixed = [
      image({ state: "synced", racks: failing }),
      // On its way (a rack pulls it: its row says the failure after "Syncing"), not served yet,
      // or on every rack: the header, as the summary, counts none of these.
      image({ state: "synced", racks: { ...failing, synced: 0, syncing: 1 } }),
      image({ state: "downloading", racks: failing }),
      image({ state: "rack-synced", racks: { ...failing, synced: 2 } }),
    ];
    expect(troubleText(mixed, [{ online: true }])).toBe("1 image failed on racks");
    // The summary line counts the same one.
    expect(summarize(mixed).racksFailed).toBe(1);
    expect(troubleText([image({})], [{ online: true }])).toBe("");
    expect(troubleText([], [{ online: false }])).toBe("1 of 1 rack offline");
  });

  it("counts updates in the summary", () => {
    const images = [
      image({ ...served, next: next({ state: "downloading", bytesDone: 1 }) }),
      image({ ...served, next: next({}) }),
      image({ ...served }),
    ];
    expect(summaryText(summarize(images))).toBe("3 images · 3 synced · 1 updating · 1 update available");
    // An update does not put a percent in the tab title: the images are served.
    expect(summarize(images).progress).toBeNull();
  });
});

describe("summary line and tab title", () => {
  const images = [
    image({ id: "a", state: "rack-synced" }),
    image({ id: "b", state: "synced" }),
    image({
      id: "c",
      state: "synced",
      racks: { synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null },
    }),
    image({
      id: "d",
      state: "synced",
      racks: { synced: 2, total: 2, syncing: 0, offline: 0, failed: 0, error: null },
    }),
    image({ id: "e", state: "downloading", bytesDone: 420 }),
    image({ id: "f", state: "failed", error: "x" }),
  ];

  it("says a region-synced image is syncing to the racks while a rack pulls it", () => {
    expect(
      statusText(
        image({
          state: "synced",
          racks: { synced: 0, total: 2, syncing: 1, offline: 0, failed: 0, error: null },
        }),
      ),
    ).toBe("Syncing to rack controller(s)");
    expect(
      statusText(
        image({
          state: "synced",
          racks: { synced: 0, total: 2, syncing: 0, offline: 0, failed: 0, error: null },
        }),
      ),
    ).toBe("Waiting for rack controller(s) to sync");
  });

  it("reads like the wall screen wants it", () => {
    expect(summaryText(summarize(images))).toBe("6 images · 4 synced · 1 downloading 42% · 1 failed");
    expect(summaryText(summarize([]))).toBe("No images");
    const waiting = [
      image({
        state: "synced",
        racks: { synced: 0, total: 1, syncing: 0, offline: 0, failed: 0, error: null },
      }),
      image({ state: "queued" }),
    ];
    expect(summaryText(summarize(waiting))).toBe("2 images · 1 syncing to racks · 1 queued");
  });

  it("gives overall progress over what is still to fetch", () => {
    const s = summarize([image({ state: "downloading", bytesDone: 500 }), image({ state: "queued" })]);
    expect(s.progress).toBe(25);
    expect(tabTitle(s.progress)).toBe("(25%) Images · Bootstream");
    expect(tabTitle(summarize(images.slice(0, 4)).progress)).toBe("Images · Bootstream");
  });
});

describe("formatting", () => {
  it("percent never shows 100 before the end", () => {
    expect(percent(999_999, 1_000_000)).toBe(99);
    expect(percent(1_000_000, 1_000_000)).toBe(100);
    expect(percent(5, 0)).toBe(0);
  });

  it.each([
    [0, "0 B"],
    [512, "512 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [1024 * 1024 - 1, "1.0 MiB"],
    [58_700_000, "56.0 MiB"],
    [365_000_000, "348.1 MiB"],
    [1_234_000_000, "1.1 GiB"],
    [5 * 1024 ** 4, "5.0 TiB"],
    [-1, "—"],
    [Number.NaN, "—"],
    [Number.POSITIVE_INFINITY, "—"],
  ])("formatBytes(%d) → %s (IEC, as the CLI's flags)", (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it.each([
    [null, ""],
    [Number.NaN, ""],
    [0, "stalled"],
    [-5, "stalled"],
    [12_300_000, "11.7 MiB/s"],
    [800, "800 B/s"],
  ])("formatRate(%s) → %o", (rate, text) => {
    expect(formatRate(rate)).toBe(text);
  });

  it.each([
    [0, 1000, null, null],
    [0, 1000, 0, null],
    [0, 0, 100, null],
    [500, 1000, 100, 5],
    [1200, 1000, 100, 0],
  ])("etaSeconds(%d of %d at %s B/s) → %s", (done, total, rate, eta) => {
    expect(etaSeconds(done, total, rate)).toBe(eta);
  });

  it.each([
    [null, ""],
    [-1, ""],
    [Number.POSITIVE_INFINITY, ""],
    [0, "less than a minute left"],
    [59, "less than a minute left"],
    [60, "1 min left"],
    [29 * 60 + 40, "30 min left"],
    [3600, "1 h left"],
    [2 * 3600 + 10 * 60, "2 h 10 min left"],
  ])("formatEta(%s) → %o", (seconds, text) => {
    expect(formatEta(seconds)).toBe(text);
  });

  it("relative times", () => {
    const now = Date.parse("2025-07-09T12:00:00Z");
    expect(formatAgo(null, now)).toBe("never");
    expect(formatAgo("2025-07-09T11:59:50Z", now)).toBe("just now");
    expect(formatAgo("2025-07-09T11:55:00Z", now)).toBe("5 min ago");
    expect(formatAgo("2025-07-09T09:00:00Z", now)).toBe("3 h ago");
    expect(formatAgo("2025-07-06T12:00:00Z", now)).toBe("3 days ago");
  });

  it("labels and end of life", () => {
    expect(releaseLabel("ubuntu", "24.04 LTS")).toBe("Ubuntu 24.04 LTS");
    expect(releaseLabel("centos", "CentOS 7")).toBe("CentOS 7");
    expect(releaseLabel("rocky", "9")).toBe("Rocky 9");
    const now = Date.parse("2025-07-09T12:00:00Z");
    expect(isEol("2025-04-30", now)).toBe(true);
    expect(isEol("2029-05-31", now)).toBe(false);
    expect(isEol(null, now)).toBe(false);
  });
});

describe("statusNews (what the dashboard's live region announces)", () => {
  it.each<[string, Partial<ImageState>, Partial<ImageState>, boolean]>([
    ["downloading → synced", { state: "downloading" }, { state: "rack-synced" }, true],
    ["percent moves", { state: "downloading", bytesDone: 1 }, { state: "downloading", bytesDone: 2 }, false],
    [
      "a rack fails while the other pulls it",
      { state: "synced", racks: racks({ syncing: 2 }) },
      { state: "synced", racks: racks({ syncing: 1, failed: 1, error: "x" }) },
      true,
    ],
    [
      "a second failure beside the first is not news again",
      { state: "synced", racks: racks({ total: 3, syncing: 2, failed: 1 }) },
      { state: "synced", racks: racks({ total: 3, syncing: 1, failed: 2 }) },
      false,
    ],
    [
      "the failed rack recovers and pulls it: no news (nor a kind change)",
      { state: "synced", racks: racks({ syncing: 1, failed: 1 }) },
      { state: "synced", racks: racks({ syncing: 2 }) },
      false,
    ],
  ])("%s", (_name, before, after, news) => {
    expect(statusNews(image(before), image(after))).toBe(news);
  });
});

describe("how an import ended (the dashboard's note and line, the CLI's status)", () => {
  const paused = "paused: the import window (01:00–05:00 UTC) closed; it resumes when the window opens";
  it.each<[string | null, string, string, string | null]>([
    [null, "finished", "Import finished.", null],
    ["stopped by alice", "stopped", "Import stopped by alice", "last import stopped by alice"],
    [paused, "paused", `Import ${paused}`, `last import ${paused}`],
    ["source unreachable", "failed", "Import failed: source unreachable", "last error: source unreachable"],
    // Only the region's own words count: a failure that mentions a pause is a failure.
    ["mirror paused: 503", "failed", "Import failed: mirror paused: 503", "last error: mirror paused: 503"],
  ])("%j", (error, kind, note, text) => {
    expect(importEndKind(error)).toBe(kind);
    expect(importEndNote(error)).toBe(note);
    expect(importEndText(error)).toBe(text);
  });
});
