// Status wording (MAAS's words) and the summary line: one copy, rendered by the dashboard and the CLI.
// Pure functions over the contract's plain values; no I/O, no clock (callers pass `now`).

import type { ImageState } from "../model";

export type StatusKind = "queued" | "downloading" | "waiting" | "syncing" | "synced" | "failed";

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
      const { synced, total } = image.racks;
      if (total <= 0 || synced >= total) return "synced";
      // A rack pulling it now (or one that already has it) means it is on its way to the racks.
      return synced > 0 || image.racks.syncing > 0 ? "syncing" : "waiting";
    }
  }
}

/** "Queued for download", "Downloading 42%", "Waiting for rack controller(s) to sync", … */
export function statusText(image: ImageState): string {
  switch (statusKind(image)) {
    case "queued":
      return "Queued for download";
    case "downloading":
      return `Downloading ${percent(image.bytesDone, image.bytesTotal)}%`;
    case "waiting":
      return "Waiting for rack controller(s) to sync";
    case "syncing":
      return "Syncing to rack controller(s)";
    case "synced":
      return "Synced";
    case "failed":
      return `Failed: ${image.error ?? "unknown error"}`;
  }
}

export type Summary = {
  total: number;
  synced: number;
  /** Synced in the region, not yet on every rack. */
  racks: number;
  downloading: number;
  queued: number;
  failed: number;
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
    downloading: 0,
    queued: 0,
    failed: 0,
    downloadPercent: null,
    progress: null,
  };
  let dlDone = 0;
  let dlTotal = 0;
  let allDone = 0;
  let allTotal = 0;
  for (const image of images) {
    s.total++;
    switch (statusKind(image)) {
      case "synced":
        s.synced++;
        break;
      case "waiting":
      case "syncing":
        s.racks++;
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
  if (s.downloading) parts.push(`${s.downloading} downloading ${s.downloadPercent ?? 0}%`);
  if (s.queued) parts.push(`${s.queued} queued`);
  if (s.failed) parts.push(`${s.failed} failed`);
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
