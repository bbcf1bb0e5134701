// Bandwidth caps as people write and read them: "20MiB/s" in, "20 MiB/s" out.
//
// One unit system on screen: a cap is shown in IEC units (KiB/s, MiB/s, GiB/s, powers of 1024), as
// sizes and measured download rates are (format.ts), so a cap and the rate it holds a download to
// read alike ("20 MiB/s" beside "19.9 MiB/s"). Typed, both are read at their real value: "20MiB/s"
// is 20 × 2²⁰ bytes a second, "20MB/s" 20 × 10⁶ (shown as 19.07 MiB/s).

import { iecScale } from "./format";

/** settings.bandwidthLimit bounds, bytes a second: 1 kB/s to 100 GB/s (the protocol's, checked by the CLI too). */
export const MIN_BANDWIDTH_LIMIT = 1000;
export const MAX_BANDWIDTH_LIMIT = 100_000_000_000;

const RATE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/**
 * A bandwidth as people write it, for the CLI and the rack agent's flag: "20MiB/s", "512KiB/s",
 * "1.5 GiB/s", "20MB/s" (MB = 10⁶ bytes), "2000000" (bytes a second; "/s" may be left off), or
 * "off"/"none" for no cap (null). Throws a RangeError naming the accepted forms.
 */
export function parseBandwidth(text: string): number | null {
  const value = text.trim().toLowerCase();
  if (value === "off" || value === "none") return null;
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?(?:\/s|ps)?$/.exec(value);
  const bytes = match ? Math.round(Number(match[1]) * RATE_UNITS[match[2] ?? "b"]!) : NaN;
  if (!Number.isFinite(bytes) || bytes <= 0) {
    throw new RangeError(
      `bandwidth "${text}": say e.g. 20MiB/s, 512KiB/s, 20MB/s (MB = 10⁶ bytes), 2000000 (bytes a second) or off`,
    );
  }
  return bytes;
}

/**
 * "20 MiB/s", "1.5 GiB/s", "19.07 MiB/s", "off": the one wording of a cap for the dashboard, CLI and
 * audit log, in IEC units like every size and rate shown (at most two decimals).
 */
export function formatBandwidth(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null) return "off";
  const [value, unit] = iecScale(bytesPerSecond, 2);
  return `${Number(value.toFixed(2))} ${unit}/s`;
}

/** Every unit parseBandwidth reads, biggest first. */
const INPUT_UNITS: readonly (readonly [string, number])[] = [
  ["GiB", 1024 ** 3],
  ["GB", 1e9],
  ["MiB", 1024 ** 2],
  ["MB", 1e6],
  ["KiB", 1024],
  ["kB", 1e3],
];

/**
 * A cap as it may be typed back ("20MB/s", "512KiB/s", "1234567"): exact, so `parseBandwidth` reads
 * the same number and saving a form left as it was changes nothing. For the dashboard's input box.
 */
export function bandwidthInput(bytesPerSecond: number): string {
  for (const [unit, size] of INPUT_UNITS)
    if (bytesPerSecond >= size && bytesPerSecond % size === 0) return `${bytesPerSecond / size}${unit}/s`;
  return String(bytesPerSecond);
}
