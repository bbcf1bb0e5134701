// Status wording (MAAS's words), the summary line, the tab title and number formatting.
// Pure functions: the dashboard renders them, the unit tests pin them.

import type { ImageState } from "@bootstream/protocol";

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
      return synced > 0 || (image.racks.syncing ?? 0) > 0 ? "syncing" : "waiting";
    }
  }
}

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

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

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

const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** Decimal units, as MAAS shows sizes: "512 MB", "1.2 GB". */
export function formatBytes(bytes: number): string {
  if (!(bytes > 0)) return "—";
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function formatRate(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null) return "";
  if (bytesPerSecond <= 0) return "stalled";
  return `${formatBytes(bytesPerSecond)}/s`;
}

const pad = (n: number): string => String(n).padStart(2, "0");

/** Local "YYYY-MM-DD HH:MM": steady width, sorts, reads the same on a wall screen. */
export function formatTime(iso: string | null): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "just now", "5 min ago", "3 h ago", "2 days ago" */
export function formatAgo(iso: string | null, now: number): string {
  if (!iso) return "never";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "never";
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 45) return "just now";
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 36) return `${h} h ago`;
  return plural(Math.round(h / 24), "day") + " ago";
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
