// Number, size, rate, ETA and time formatting: one unit system (IEC: KiB, MiB, GiB) for the
// dashboard, the CLI and the domain's own error messages.

import { plural } from "./wording";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/**
 * `bytes` in the biggest IEC unit it fills at least once, as [value, unit]; a value that would round
 * to 1024 at `decimals` is carried to the next unit (never "1024.0 KiB").
 */
export function iecScale(bytes: number, decimals: number): [number, string] {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit > 0 && unit < UNITS.length - 1 && Number(value.toFixed(decimals)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return [value, UNITS[unit]!];
}

/**
 * IEC units, as `ls -h` and the CLI's flags (64KiB, 256MiB): "512 B", "56.0 MiB", "1.2 GiB".
 * One decimal from KiB up, so a column of sizes lines up; "—" for what is not a size.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  const [value, unit] = iecScale(bytes, 1);
  return unit === "B" ? `${Math.floor(value)} B` : `${value.toFixed(1)} ${unit}`;
}

/** "12.3 MiB/s"; "stalled" at 0; "" while the rate is not known yet (null). */
export function formatRate(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null || Number.isNaN(bytesPerSecond)) return "";
  if (bytesPerSecond <= 0) return "stalled";
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** Seconds left at `bytesPerSecond` for what remains of `total`; null when it cannot be told. */
export function etaSeconds(done: number, total: number, bytesPerSecond: number | null): number | null {
  if (bytesPerSecond === null || !(bytesPerSecond > 0) || !(total > 0)) return null;
  return Math.max(0, total - done) / bytesPerSecond;
}

/** "less than a minute left", "5 min left", "2 h 10 min left"; "" when unknown. */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 60) return "less than a minute left";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min left`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m === 0 ? `${h} h left` : `${h} h ${m} min left`;
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

/** Within this long "Last synced" reads "3 h ago"; older, the date and time. */
const LAST_SYNCED_AGO_MS = 7 * 24 * 3_600_000;

/** "Last synced": "3 h ago" within a week, then "2026-11-20 14:05"; "—" when nothing is served. */
export function formatLastSynced(iso: string | null, now: number): string {
  if (!iso) return "—";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return "—";
  return now - t < LAST_SYNCED_AGO_MS ? formatAgo(iso, now) : formatTime(iso);
}
