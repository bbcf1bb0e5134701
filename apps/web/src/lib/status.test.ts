import { describe, expect, it } from "vitest";
import type { ImageState } from "@bootstream/protocol";
import {
  formatAgo,
  formatBytes,
  formatRate,
  isEol,
  percent,
  releaseLabel,
  statusText,
  summarize,
  summaryText,
  tabTitle,
} from "./status";

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
    racks: { synced: 0, total: 0 },
    error: null,
    updatedAt: "2025-07-09T10:00:00.000Z",
    ...patch,
  };
}

describe("statusText (MAAS's words)", () => {
  it.each([
    [{ state: "queued" }, "Queued for download"],
    [{ state: "downloading", bytesDone: 420 }, "Downloading 42%"],
    [{ state: "downloading", bytesDone: 999 }, "Downloading 99%"],
    [{ state: "downloading", bytesTotal: 0 }, "Downloading 0%"],
    [{ state: "synced", racks: { synced: 0, total: 2 } }, "Waiting for rack controller(s) to sync"],
    [{ state: "synced", racks: { synced: 1, total: 2 } }, "Syncing to rack controller(s)"],
    [{ state: "synced", racks: { synced: 0, total: 0 } }, "Synced"],
    [{ state: "synced", racks: { synced: 2, total: 2 } }, "Synced"],
    [{ state: "rack-synced", racks: { synced: 2, total: 2 } }, "Synced"],
    [{ state: "failed", error: "sha256 mismatch" }, "Failed: sha256 mismatch"],
    [{ state: "failed", error: null }, "Failed: unknown error"],
  ] as [Partial<ImageState>, string][])("%o → %s", (patch, text) => {
    expect(statusText(image(patch))).toBe(text);
  });
});

describe("summary line and tab title", () => {
  const images = [
    image({ id: "a", state: "rack-synced" }),
    image({ id: "b", state: "synced" }),
    image({ id: "c", state: "synced", racks: { synced: 0, total: 0 } }),
    image({ id: "d", state: "synced", racks: { synced: 2, total: 2 } }),
    image({ id: "e", state: "downloading", bytesDone: 420 }),
    image({ id: "f", state: "failed", error: "x" }),
  ];

  it("says a region-synced image is syncing to the racks while a rack pulls it", () => {
    expect(statusText(image({ state: "synced", racks: { synced: 0, total: 2, syncing: 1 } }))).toBe(
      "Syncing to rack controller(s)",
    );
    expect(statusText(image({ state: "synced", racks: { synced: 0, total: 2, syncing: 0 } }))).toBe(
      "Waiting for rack controller(s) to sync",
    );
  });

  it("reads like the wall screen wants it", () => {
    expect(summaryText(summarize(images))).toBe("6 images · 4 synced · 1 downloading 42% · 1 failed");
    expect(summaryText(summarize([]))).toBe("No images");
    const waiting = [image({ state: "synced", racks: { synced: 0, total: 1 } }), image({ state: "queued" })];
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

  it("sizes and rates", () => {
    expect(formatBytes(0)).toBe("—");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(365_000_000)).toBe("365 MB");
    expect(formatBytes(1_234_000_000)).toBe("1.2 GB");
    expect(formatRate(null)).toBe("");
    expect(formatRate(0)).toBe("stalled");
    expect(formatRate(12_300_000)).toBe("12.3 MB/s");
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
