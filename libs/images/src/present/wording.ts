// Status wording (MAAS's words) and the summary line: one copy, rendered by the dashboard and the CLI.
// Pure functions over the contract's plain values; no I/O, no clock (callers pass `now`).

import { IMPORT_PAUSED, IMPORT_STOPPED } from "../lifecycle";
import type { ImageState } from "../model";

export type StatusKind =
  "queued" | "downloading" | "waiting" | "syncing" | "rack-failed" | "synced" | "failed";

/** Whole percent done, 0–100; 100 only when every byte is there. */
export function percent(done: number, total: number): number {
  if (!(total > 0)) return 0;
  if (done >= total) return 100;
  return Math.max(0, Math.min(99, Math.floor((done / total) * 100)));
}

export function statusKind(image: ImageState): StatusKind {
  switch (image.state) {
    case "queued":
      return "queued";
    case "downloading":
      return "downloading";
    case "failed":
      return "failed";
    case "rack-synced":
      return "synced";
    case "synced": {
      const { synced, total, syncing, failed } = image.racks;
      if (total <= 0 || synced >= total) return "synced";
      // A rack pulling it now means it is on its way to the racks.
      if (syncing > 0) return "syncing";
      // Nothing moves and a rack failed on it (a rack that has not tried yet neither holds, pulls
      // nor failed): that is the news, whether or not another rack holds it.
      if (failed > 0) return "rack-failed";
      return synced > 0 ? "syncing" : "waiting";
    }
  }
}

/**
 * "Queued for download", "Downloading 42%", "Waiting for rack controller(s) to sync", "Sync failed
 * on 2 rack controllers: …" (no rack pulls it and some failed: how many, the first rack's error, and
 * how many hold it: "Sync failed on 1 rack controller (synced on 1): …"), "Syncing to rack
 * controller(s) · failed on 1 rack controller: …" while others still pull it, …
 */
export function statusText(image: ImageState): string {
  const { failed, synced, error } = image.racks;
  const why = error ?? "unknown error";
  switch (statusKind(image)) {
    case "queued":
      return "Queued for download";
    case "downloading":
      return `Downloading ${percent(image.bytesDone, image.bytesTotal)}%`;
    case "waiting":
      return "Waiting for rack controller(s) to sync";
    case "syncing":
      return failed > 0
        ? `Syncing to rack controller(s) · failed on ${plural(failed, "rack controller")}: ${why}`
        : "Syncing to rack controller(s)";
    case "rack-failed":
      return `Sync failed on ${plural(failed, "rack controller")}${synced > 0 ? ` (synced on ${synced})` : ""}: ${why}`;
    case "synced":
      return "Synced";
    case "failed":
      return `Failed: ${image.error ?? "unknown error"}`;
  }
}

/**
 * Whether a row's change is news for a screen reader's live region: its kind changed ("Downloading"
 * → "Synced"), or a rack failed on an image other racks still pull (the kind stays "syncing").
 */
export function statusNews(before: ImageState, after: ImageState): boolean {
  if (statusKind(before) !== statusKind(after)) return true;
  return after.racks.failed > 0 && before.racks.failed === 0;
}

/** Served: the region holds a version (so `next` is an update beside it, not the first import). */
export function isServed(image: ImageState): boolean {
  return image.state === "synced" || image.state === "rack-synced";
}

/**
 * The newer version's line, or null when there is none: "updating to 20250812 42%", "update to
 * 20250812 queued", "update available: 20250812", "update to 20250812 failed: sha256 mismatch".
 */
export function updateText(image: ImageState): string | null {
  const next = image.next;
  if (!next) return null;
  switch (next.state) {
    case "available":
      return `update available: ${next.version}`;
    case "queued":
      return `update to ${next.version} queued`;
    case "downloading":
      return `updating to ${next.version} ${percent(next.bytesDone, next.bytesTotal)}%`;
    case "failed":
      return `update to ${next.version} failed: ${next.error ?? "unknown error"}`;
  }
}

/** The row's status: statusText, then the update of a served image ("Synced · updating to V 42%"). */
export function statusLine(image: ImageState): string {
  const update = isServed(image) ? updateText(image) : null;
  return update ? `${statusText(image)} · ${update}` : statusText(image);
}

/** True while a served image's newer version downloads (the row shows its bar). */
export function isUpdating(image: ImageState): boolean {
  return isServed(image) && image.next?.state === "downloading";
}

/**
 * The racks cell: synced of all registered racks, and the offline ones named apart: "2/2",
 * "1/2 · 1 offline", "0/1 · 1 offline"; "—" with no rack.
 */
export function racksText(racks: ImageState["racks"]): string {
  const all = racks.total + racks.offline;
  if (all <= 0) return "—";
  return racks.offline > 0 ? `${racks.synced}/${all} · ${racks.offline} offline` : `${racks.synced}/${all}`;
}

/**
 * The header's trouble line: "1 warning · 1 update failed · 1 image failed on racks · 1 of 2 racks
 * offline"; "" when all is well.
 */
export function troubleText(
  images: Iterable<ImageState>,
  racks: Iterable<{ readonly online: boolean }>,
): string {
  let warnings = 0;
  let failedUpdates = 0;
  let failedOnRacks = 0;
  for (const image of images) {
    if (image.warning) warnings++;
    if (image.next?.state === "failed") failedUpdates++;
    // As its row and the summary say it ("Sync failed on …"): one beside racks still pulling it
    // is on its way, and says its failure on its row only.
    if (statusKind(image) === "rack-failed") failedOnRacks++;
  }
  let all = 0;
  let offline = 0;
  for (const rack of racks) {
    all++;
    if (!rack.online) offline++;
  }
  const parts: string[] = [];
  if (warnings) parts.push(plural(warnings, "warning"));
  if (failedUpdates) parts.push(plural(failedUpdates, "update") + " failed");
  if (failedOnRacks) parts.push(plural(failedOnRacks, "image") + " failed on racks");
  if (offline) parts.push(`${offline} of ${plural(all, "rack")} offline`);
  return parts.join(" · ");
}

export type Summary = {
  total: number;
  synced: number;
  /** Synced in the region, not yet on every rack. */
  racks: number;
  /** Synced in the region, no rack pulls it and some failed to (others may hold it). */
  racksFailed: number;
  downloading: number;
  queued: number;
  failed: number;
  /** Served images whose newer version downloads, and those with one available (not importing). */
  updating: number;
  available: number;
  /** Percent done over the downloading images, null when none downloads. */
  downloadPercent: number | null;
  /** Percent done over everything still to fetch (queued + downloading), null when nothing is. */
  progress: number | null;
};

export function summarize(images: Iterable<ImageState>): Summary {
  const s: Summary = {
    total: 0,
    synced: 0,
    racks: 0,
    racksFailed: 0,
    downloading: 0,
    queued: 0,
    failed: 0,
    updating: 0,
    available: 0,
    downloadPercent: null,
    progress: null,
  };
  let dlDone = 0;
  let dlTotal = 0;
  let allDone = 0;
  let allTotal = 0;
  for (const image of images) {
    s.total++;
    if (isServed(image) && image.next?.state === "downloading") s.updating++;
    if (isServed(image) && image.next?.state === "available") s.available++;
    switch (statusKind(image)) {
      case "synced":
        s.synced++;
        break;
      case "waiting":
      case "syncing":
        s.racks++;
        break;
      case "rack-failed":
        s.racksFailed++;
        break;
      case "downloading":
        s.downloading++;
        dlDone += Math.min(image.bytesDone, image.bytesTotal);
        dlTotal += image.bytesTotal;
        allDone += Math.min(image.bytesDone, image.bytesTotal);
        allTotal += image.bytesTotal;
        break;
      case "queued":
        s.queued++;
        allTotal += image.bytesTotal;
        break;
      case "failed":
        s.failed++;
        break;
    }
  }
  if (s.downloading > 0) s.downloadPercent = percent(dlDone, dlTotal);
  if (s.downloading + s.queued > 0) s.progress = percent(allDone, allTotal);
  return s;
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** "6 images · 4 synced · 1 downloading 42% · 1 failed" */
export function summaryText(s: Summary): string {
  if (s.total === 0) return "No images";
  const parts = [plural(s.total, "image")];
  if (s.synced) parts.push(`${s.synced} synced`);
  if (s.racks) parts.push(`${s.racks} syncing to racks`);
  if (s.racksFailed) parts.push(`${s.racksFailed} failed on racks`);
  if (s.downloading) parts.push(`${s.downloading} downloading ${s.downloadPercent ?? 0}%`);
  if (s.queued) parts.push(`${s.queued} queued`);
  if (s.failed) parts.push(`${s.failed} failed`);
  if (s.updating) parts.push(`${s.updating} updating`);
  if (s.available) parts.push(plural(s.available, "update") + " available");
  return parts.join(" · ");
}

export function tabTitle(progress: number | null): string {
  return progress === null ? "Images · Bootstream" : `(${progress}%) Images · Bootstream`;
}

const OS_NAMES: Record<string, string> = {
  ubuntu: "Ubuntu",
  centos: "CentOS",
  rhel: "RHEL",
  custom: "Custom",
};

export function osName(os: string): string {
  return OS_NAMES[os] ?? os.charAt(0).toUpperCase() + os.slice(1);
}

/** "Ubuntu 24.04 LTS", "CentOS 7" (titles that already name the OS are kept as they are). */
export function releaseLabel(os: string, title: string): string {
  const name = osName(os);
  return title.toLowerCase().startsWith(name.toLowerCase()) ? title : `${name} ${title}`;
}

/** True when an end-of-life date (YYYY-MM-DD…) has passed. */
export function isEol(eol: string | null, now: number): boolean {
  if (!eol) return false;
  const t = new Date(eol).getTime();
  return !Number.isNaN(t) && t < now;
}

// ---- how an import ended ---------------------------------------------------------------------

/** An ended import's `error`: a stop and a pause are not failures. */
export function importEndKind(error: string | null): "finished" | "stopped" | "paused" | "failed" {
  if (error === null) return "finished";
  if (error.startsWith(IMPORT_STOPPED)) return "stopped";
  if (error.startsWith(IMPORT_PAUSED)) return "paused";
  return "failed";
}

/** "Import finished.", "Import stopped by alice.", "Import paused: …", "Import failed: …" (announced). */
export function importEndNote(error: string | null): string {
  const kind = importEndKind(error);
  if (kind === "finished") return "Import finished.";
  return kind === "failed" ? `Import failed: ${error}` : `Import ${error}`;
}

/** The status line's word on the last import: nothing when it went well, else how it ended. */
export function importEndText(error: string | null): string | null {
  const kind = importEndKind(error);
  if (kind === "finished") return null;
  return kind === "failed" ? `last error: ${error}` : `last import ${error}`;
}
