import { describe, expect, it } from "vitest";
import {
  CORRUPT_WARNING,
  deselected,
  downloadStarted,
  imageState,
  importFailed,
  importStopped,
  importWarning,
  newImageRecord,
  notOffered,
  pending,
  planApplied,
  progressed,
  recovered,
  servedStatus,
  versionOffered,
  versionSwitched,
  type ImageRecord,
  type PlannedVersion,
  type RackCounts,
} from "./lifecycle";
import type { ImageStatus } from "./model";

const T0 = "2026-01-01T00:00:00.000Z";
const T1 = "2026-01-02T00:00:00.000Z";
const URL = "http://mirror/streams/v1/index.sjson";

const fresh = (patch: Partial<ImageRecord> = {}): ImageRecord => ({
  ...newImageRecord(
    "ubuntu/noble/amd64",
    { os: "ubuntu", release: "noble", arch: "amd64", title: "24.04 LTS" },
    T0,
  ),
  ...patch,
});
/** Holds 20250601, nothing newer in play. */
const held = (patch: Partial<ImageRecord> = {}): ImageRecord =>
  fresh({ version: "20250601", state: "synced", bytesTotal: 100, bytesDone: 100, syncedAt: T0, ...patch });
const plan = (version: string, patch: Partial<PlannedVersion> = {}): PlannedVersion => ({
  version,
  title: "24.04 LTS",
  bytesTotal: 200,
  bytesStored: 20,
  ...patch,
});
const noRacks: RackCounts = { synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null };

describe("planApplied", () => {
  it.each<[string, ImageRecord, PlannedVersion, Partial<ImageRecord> | null]>([
    [
      "a fresh image queues the planned version with the bytes already stored",
      fresh(),
      plan("20250701"),
      { state: "queued", targetVersion: "20250701", bytesTotal: 200, bytesDone: 20, nextState: null },
    ],
    [
      "a failed image is queued again, its error gone",
      fresh({ state: "failed", error: "boom", targetVersion: "20250701" }),
      plan("20250701"),
      { state: "queued", error: null },
    ],
    [
      "a held image keeps serving; the newer version is queued as next",
      held(),
      plan("20250701"),
      {
        state: "synced",
        version: "20250601",
        bytesDone: 100,
        targetVersion: "20250701",
        nextState: "queued",
        nextBytesTotal: 200,
        nextBytesDone: 20,
      },
    ],
    [
      "a held image whose next failed is queued again",
      held({ targetVersion: "20250701", nextState: "failed", nextError: "x" }),
      plan("20250701"),
      { nextState: "queued", nextError: null },
    ],
    ["an up-to-date image does not change", held(), plan("20250601"), null],
    [
      "an up-to-date image offered again loses its not-offered warning",
      held({ warning: "not offered by x; keeping 20250601" }),
      plan("20250601"),
      { warning: null, state: "synced" },
    ],
  ])("%s", (_name, record, planned, expected) => {
    const next = planApplied(record, planned, T1);
    if (expected === null) expect(next).toBeNull();
    else expect(next).toMatchObject({ ...expected, updatedAt: T1 });
  });
});

describe("downloads", () => {
  it.each<[string, ImageRecord, Partial<ImageRecord> | null]>([
    [
      "queued → downloading",
      fresh({ state: "queued", targetVersion: "v2" }),
      { state: "downloading", bytesDone: 50 },
    ],
    [
      "next queued → next downloading, the image still synced",
      held({ targetVersion: "v2", nextState: "queued" }),
      { state: "synced", nextState: "downloading", nextBytesDone: 50, bytesDone: 100 },
    ],
    ["already downloading: no second write", fresh({ state: "downloading" }), null],
    ["a failed image does not start", fresh({ state: "failed" }), null],
    ["a held image with no next does not start", held(), null],
  ])("downloadStarted: %s", (_name, record, expected) => {
    const next = downloadStarted(record, 50, T1);
    if (expected === null) expect(next).toBeNull();
    else expect(next).toMatchObject(expected);
  });

  it.each<[string, ImageRecord, Partial<ImageRecord> | null]>([
    ["downloading counts bytes", fresh({ state: "downloading" }), { bytesDone: 70 }],
    [
      "next downloading counts next bytes only",
      held({ targetVersion: "v2", nextState: "downloading" }),
      { bytesDone: 100, nextBytesDone: 70 },
    ],
    ["queued ignores progress (downloadStarted first)", fresh(), null],
    ["synced ignores progress", held(), null],
  ])("progressed: %s", (_name, record, expected) => {
    const next = progressed(record, 70);
    if (expected === null) expect(next).toBeNull();
    else expect(next).toMatchObject({ ...expected, updatedAt: record.updatedAt });
  });
});

describe("versionSwitched", () => {
  it("switches a downloading image to synced, bytes whole, syncedAt now", () => {
    const next = versionSwitched(
      fresh({ state: "downloading", targetVersion: "v2", bytesDone: 150 }),
      plan("v2"),
      T1,
    );
    expect(next).toMatchObject({
      state: "synced",
      version: "v2",
      targetVersion: null,
      bytesDone: 200,
      bytesTotal: 200,
      syncedAt: T1,
    });
  });
  it("switches a held image to its next, clearing next and the warning", () => {
    const next = versionSwitched(
      held({ targetVersion: "v2", nextState: "downloading", warning: "w" }),
      plan("v2"),
      T1,
    );
    expect(next).toMatchObject({
      version: "v2",
      nextState: null,
      nextBytesDone: 0,
      warning: null,
      syncedAt: T1,
    });
  });
  it("keeps syncedAt when the same version is switched again", () => {
    const next = versionSwitched(held({ bytesDone: 10 }), plan("20250601", { bytesTotal: 100 }), T1);
    expect(next).toMatchObject({ syncedAt: T0, bytesDone: 100 });
  });
  it("does nothing for an image already serving that version whole", () => {
    expect(versionSwitched(held(), plan("20250601", { bytesTotal: 100 }), T1)).toBeNull();
  });
});

describe("failure, stop, recovery", () => {
  it.each<[string, ImageRecord, Partial<ImageRecord>]>([
    [
      "a downloading image fails with the reason",
      fresh({ state: "downloading", bytesDone: 46 }),
      { state: "failed", error: "ENOSPC" },
    ],
    [
      "a held image keeps serving; next says failed",
      held({ targetVersion: "v2", nextState: "downloading" }),
      { state: "synced", version: "20250601", nextState: "failed", nextError: "ENOSPC", error: null },
    ],
    [
      "a held image without next gets a warning",
      held(),
      { state: "synced", warning: "update failed: ENOSPC" },
    ],
  ])("importFailed: %s", (_name, record, expected) => {
    expect(importFailed(record, "ENOSPC", T1)).toMatchObject(expected);
  });

  it.each<[string, ImageRecord, Partial<ImageRecord> | null]>([
    [
      "downloading goes back to queued",
      fresh({ state: "downloading", bytesDone: 46 }),
      { state: "queued", bytesDone: 46 },
    ],
    [
      "next downloading goes back to next queued",
      held({ targetVersion: "v2", nextState: "downloading" }),
      { state: "synced", nextState: "queued" },
    ],
    ["queued stays", fresh(), null],
    ["failed stays failed", fresh({ state: "failed", error: "x" }), null],
    ["synced stays", held(), null],
  ])("importStopped / recovered: %s", (_name, record, expected) => {
    for (const transition of [importStopped, recovered]) {
      const next = transition(record, T1);
      if (expected === null) expect(next).toBeNull();
      else expect(next).toMatchObject(expected);
    }
  });

  it.each<[string, ImageRecord, boolean]>([
    ["queued", fresh(), true],
    ["downloading", fresh({ state: "downloading" }), true],
    ["failed", fresh({ state: "failed" }), false],
    ["synced", held(), false],
    ["synced, next queued", held({ targetVersion: "v2", nextState: "queued" }), true],
    ["synced, next available", held({ targetVersion: "v2", nextState: "available" }), false],
    ["synced, next failed", held({ targetVersion: "v2", nextState: "failed" }), false],
  ])("pending: %s → %s", (_name, record, expected) => {
    expect(pending(record)).toBe(expected);
  });
});

describe("not offered, offered (check-only), deselected", () => {
  it("a held image not offered stays served with a warning, its next dropped", () => {
    const next = notOffered(held({ targetVersion: "v2", nextState: "queued" }), URL, T1);
    expect(next).toMatchObject({
      state: "synced",
      warning: `not offered by ${URL}; keeping 20250601`,
      targetVersion: null,
      nextState: null,
    });
    expect(notOffered(next!, URL, T1)).toBeNull();
  });
  it("an image holding nothing fails: nothing to serve", () => {
    expect(notOffered(fresh(), URL, T1)).toMatchObject({ state: "failed", error: `not offered by ${URL}` });
  });
  it.each<[string, ImageRecord, Partial<ImageRecord> | null]>([
    [
      "a held image learns of a newer version: available",
      held(),
      { state: "synced", targetVersion: "v2", nextState: "available", nextBytesTotal: 200 },
    ],
    ["already known as next: no write", held({ targetVersion: "v2", nextState: "available" }), null],
    ["already downloading it: no write", held({ targetVersion: "v2", nextState: "downloading" }), null],
    [
      "an image holding nothing learns its version, state kept",
      fresh(),
      { state: "queued", targetVersion: "v2" },
    ],
  ])("versionOffered: %s", (_name, record, expected) => {
    const next = versionOffered(record, plan("v2"), T1);
    if (expected === null) expect(next).toBeNull();
    else expect(next).toMatchObject(expected);
  });
  it("versionOffered ignores the version already held", () => {
    expect(versionOffered(held(), plan("20250601"), T1)).toBeNull();
  });
  it("deselected lists the images the new selection drops", () => {
    expect(deselected([{ id: "a" }, { id: "b" }, { id: "c" }], new Set(["b"]))).toEqual(["a", "c"]);
  });
});

describe("a corruption warning stays while the file is out of service", () => {
  const CORRUPT = `${CORRUPT_WARNING}: squashfs; not served until repaired (bootstream verify --repair)`;
  const corrupt = (patch: Partial<ImageRecord> = {}) => held({ warning: CORRUPT, ...patch });
  // Every import transition that sets or clears a held image's warning: the corruption warning
  // stays on (only the verifier's `corruptionWarned` takes it back); any other warning follows
  // the import as before.
  it.each<[string, (r: ImageRecord) => ImageRecord | null, ImageRecord, string | null]>([
    [
      "planApplied, same version (the import fetches the file again)",
      (r) => planApplied(r, plan("20250601"), T1),
      corrupt({ targetVersion: "v2", nextState: "available" }),
      CORRUPT,
    ],
    [
      "planApplied, same version, nothing else in play: no write",
      (r) => planApplied(r, plan("20250601"), T1),
      corrupt(),
      "unchanged",
    ],
    [
      "planApplied, same version, another warning goes",
      (r) => planApplied(r, plan("20250601"), T1),
      held({ warning: "update failed: x" }),
      null,
    ],
    [
      "planApplied, a newer version queued beside it",
      (r) => planApplied(r, plan("v2"), T1),
      corrupt(),
      CORRUPT,
    ],
    [
      "planApplied, newer version, another warning goes",
      (r) => planApplied(r, plan("v2"), T1),
      held({ warning: "update failed: x" }),
      null,
    ],
    ["versionOffered (check-only run)", (r) => versionOffered(r, plan("v2"), T1), corrupt(), CORRUPT],
    [
      "versionOffered, another warning goes",
      (r) => versionOffered(r, plan("v2"), T1),
      held({ warning: "update failed: x" }),
      null,
    ],
    ["importFailed with nothing in play", (r) => importFailed(r, "ECONNRESET", T1), corrupt(), CORRUPT],
    [
      "importFailed, another warning replaced",
      (r) => importFailed(r, "ECONNRESET", T1),
      held({ warning: "w" }),
      "update failed: ECONNRESET",
    ],
    [
      "notOffered",
      (r) => notOffered(r, URL, T1),
      corrupt({ targetVersion: "v2", nextState: "queued" }),
      CORRUPT,
    ],
    ["notOffered again: no write", (r) => notOffered(r, URL, T1), corrupt(), "unchanged"],
    [
      "versionSwitched, the same version again",
      (r) => versionSwitched(r, plan("20250601"), T1),
      corrupt({ bytesDone: 10 }),
      CORRUPT,
    ],
    [
      "versionSwitched to a newer version: its files are all stored",
      (r) => versionSwitched(r, plan("v2"), T1),
      corrupt({ targetVersion: "v2", nextState: "downloading" }),
      null,
    ],
  ])("%s", (_name, transition, record, expected) => {
    const next = transition(record);
    if (expected === "unchanged") expect(next).toBeNull();
    else expect(next).toMatchObject({ warning: expected, updatedAt: T1 });
  });
  it("importWarning keeps only a corruption warning", () => {
    expect(importWarning(corrupt(), null)).toBe(CORRUPT);
    expect(importWarning(held({ warning: "not offered by x; keeping v1" }), null)).toBeNull();
    expect(importWarning(held(), "update failed: x")).toBe("update failed: x");
  });
});

describe("syncedAt: when the served version synced, folded through the lifecycle", () => {
  const T2 = "2026-01-03T00:00:00.000Z";
  const T3 = "2026-01-04T00:00:00.000Z";
  const T4 = "2026-01-05T00:00:00.000Z";
  type Step = (r: ImageRecord) => ImageRecord | null;
  // Each step is a transition at its own time; a null result (nothing changes) keeps the record.
  const planned =
    (v: string, at: string): Step =>
    (r) =>
      planApplied(r, plan(v), at);
  const started =
    (at: string): Step =>
    (r) =>
      downloadStarted(r, 50, at);
  const switched =
    (v: string, at: string): Step =>
    (r) =>
      versionSwitched(r, plan(v), at);
  const failed =
    (at: string): Step =>
    (r) =>
      importFailed(r, "ENOSPC", at);
  const offered =
    (v: string, at: string): Step =>
    (r) =>
      versionOffered(r, plan(v), at);
  const gone =
    (at: string): Step =>
    (r) =>
      notOffered(r, URL, at);
  const stopped =
    (at: string): Step =>
    (r) =>
      importStopped(r, at);
  const allRacks: RackCounts = { synced: 2, total: 2, syncing: 0, offline: 0, failed: 0, error: null };

  it.each<[string, Step[], RackCounts, string | null, ImageStatus]>([
    ["a fresh image holds nothing: none", [], noRacks, null, "queued"],
    ["queued and downloading: still none", [planned("v1", T1), started(T2)], noRacks, null, "downloading"],
    [
      "a first import that fails: none",
      [planned("v1", T1), started(T2), failed(T3)],
      noRacks,
      null,
      "failed",
    ],
    [
      "the first version synced: then",
      [planned("v1", T1), started(T2), switched("v1", T3)],
      noRacks,
      T3,
      "synced",
    ],
    [
      "kept when every rack holds it (rack-synced)",
      [planned("v1", T1), switched("v1", T2)],
      allRacks,
      T2,
      "rack-synced",
    ],
    [
      "kept while a newer version is queued and downloads (updatedAt moves on)",
      [planned("v1", T1), switched("v1", T2), planned("v2", T3), started(T4)],
      allRacks,
      T2,
      "rack-synced",
    ],
    [
      "kept when that update fails",
      [planned("v1", T1), switched("v1", T2), planned("v2", T3), failed(T4)],
      noRacks,
      T2,
      "synced",
    ],
    [
      "kept when an update is only offered (auto-import off), stopped, or the source drops it",
      [planned("v1", T1), switched("v1", T2), offered("v2", T3), stopped(T3), gone(T4)],
      noRacks,
      T2,
      "synced",
    ],
    [
      "kept when the same version is switched in again (a repair)",
      [planned("v1", T1), switched("v1", T2), switched("v1", T4)],
      noRacks,
      T2,
      "synced",
    ],
    [
      "moves forward when the newer version switches in",
      [planned("v1", T1), switched("v1", T2), planned("v2", T3), started(T3), switched("v2", T4)],
      noRacks,
      T4,
      "synced",
    ],
  ])("%s", (_name, steps, racks, syncedAt, state) => {
    const record = steps.reduce((r, step) => step(r) ?? r, fresh());
    const image = imageState(record, racks);
    expect(image.syncedAt).toBe(syncedAt);
    expect(image.state).toBe(state);
    // The record keeps it as is (persisted with it), so a restart reads the same value back.
    expect(record.syncedAt).toBe(syncedAt);
  });

  it("is the served version's, not updatedAt, while an update downloads", () => {
    const record = [planned("v1", T1), switched("v1", T2), planned("v2", T3), started(T4)].reduce(
      (r, step) => step(r) ?? r,
      fresh(),
    );
    expect(imageState(record, noRacks)).toMatchObject({ syncedAt: T2, updatedAt: T4, version: "v1" });
  });
});

describe("ImageState derivation", () => {
  it.each<[string, ImageRecord, RackCounts, Record<string, unknown>]>([
    [
      "a queued image shows the version being imported",
      fresh({ targetVersion: "v2" }),
      noRacks,
      { state: "queued", version: "v2", next: null, warning: null, error: null },
    ],
    [
      "a failed image shows its error",
      fresh({ state: "failed", error: "boom" }),
      noRacks,
      { state: "failed", error: "boom" },
    ],
    ["synced with no racks stays synced", held(), noRacks, { state: "synced", version: "20250601" }],
    [
      "synced on every online rack is rack-synced",
      held(),
      { synced: 2, total: 2, syncing: 0, offline: 1, failed: 0, error: null },
      {
        state: "rack-synced",
        racks: { synced: 2, total: 2, syncing: 0, offline: 1, failed: 0, error: null },
      },
    ],
    [
      "synced on some racks is synced",
      held(),
      { synced: 1, total: 2, syncing: 1, offline: 0, failed: 0, error: null },
      { state: "synced" },
    ],
    [
      "downloading is never rack-synced",
      fresh({ state: "downloading" }),
      { synced: 2, total: 2, syncing: 0, offline: 0, failed: 0, error: null },
      { state: "downloading" },
    ],
    [
      "a newer version downloading: the served state stays, next carries the progress",
      held({ targetVersion: "v2", nextState: "downloading", nextBytesTotal: 200, nextBytesDone: 80 }),
      { synced: 1, total: 1, syncing: 0, offline: 0, failed: 0, error: null },
      {
        state: "rack-synced",
        version: "20250601",
        bytesDone: 100,
        next: { version: "v2", state: "downloading", bytesTotal: 200, bytesDone: 80, error: null },
      },
    ],
    [
      "a failed update: served, next failed with the error",
      held({ targetVersion: "v2", nextState: "failed", nextError: "ENOSPC" }),
      noRacks,
      { state: "synced", error: null, next: { version: "v2", state: "failed", error: "ENOSPC" } },
    ],
    [
      "not offered: served, with the warning",
      held({ warning: "not offered by x; keeping 20250601" }),
      noRacks,
      { state: "synced", warning: "not offered by x; keeping 20250601", next: null },
    ],
    [
      "an older row with a target and no next state reads as queued",
      held({ targetVersion: "v2" }),
      noRacks,
      { next: { version: "v2", state: "queued" } },
    ],
  ])("%s", (_name, record, racks, expected) => {
    expect(imageState(record, racks)).toMatchObject(expected);
  });

  it.each<[RackCounts, string]>([
    [{ synced: 0, total: 0, syncing: 0, offline: 3, failed: 0, error: null }, "synced"],
    [{ synced: 3, total: 3, syncing: 0, offline: 5, failed: 0, error: null }, "rack-synced"],
    [{ synced: 2, total: 3, syncing: 1, offline: 0, failed: 0, error: null }, "synced"],
  ])("servedStatus(synced, %o) = %s (offline racks never hold it back)", (racks, expected) => {
    expect(servedStatus("synced", racks)).toBe(expected);
  });
});
