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

const PREFIXES: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9 };
const BINARY_PREFIXES: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * A bandwidth as people write it, for the CLI, the rack agent's flag and the dashboard: "20MiB/s",
 * "512KiB/s", "1.5 GiB/s", "20MB/s" (MB = 10⁶ bytes), "2000000" (bytes a second; "/s" may be left
 * off), "100Mbit/s" or "100Mb/s" (bits: B is a byte, b a bit, as links are sold), or "off"/"none"
 * for no cap (null). Throws a RangeError naming the accepted forms.
 */
export function parseBandwidth(text: string): number | null {
  const value = text.trim();
  if (/^(off|none)$/i.test(value)) return null;
  const match = /^(\d+(?:\.\d+)?)\s*(?:([kmgKMG])(i?))?(B|bit|b)?(?:\/s|ps)?$/.exec(value);
  let bytes = NaN;
  if (match && !(match[3] && !match[4]) && !(match[2] && !match[4])) {
    const prefix = (match[2] ?? "").toLowerCase();
    const scale = match[3] ? BINARY_PREFIXES[prefix]! : PREFIXES[prefix]!;
    const bits = match[4] === "b" || match[4] === "bit";
    bytes = Math.round((Number(match[1]) * scale) / (bits ? 8 : 1));
  }
  if (!Number.isFinite(bytes) || bytes <= 0) {
    throw new RangeError(
      `bandwidth "${text}": say e.g. 20MiB/s, 512KiB/s, 20MB/s (MB = 10⁶ bytes), 100Mbit/s (bits), 2000000 (bytes a second) or off`,
    );
  }
  return bytes;
}

/**
 * What is wrong with a cap as typed, or null when it is one a region and a rack take (off, or 1 kB/s
 * to 100 GB/s): the CLI says it before anything is sent, the rack agent before it starts.
 */
export function bandwidthProblem(text: string): string | null {
  let limit: number | null;
  try {
    limit = parseBandwidth(text);
  } catch (error) {
    return (error as Error).message;
  }
  if (limit !== null && (limit < MIN_BANDWIDTH_LIMIT || limit > MAX_BANDWIDTH_LIMIT))
    return `bandwidth "${text}": a cap is from ${formatBandwidth(MIN_BANDWIDTH_LIMIT)} to ${formatBandwidth(MAX_BANDWIDTH_LIMIT)}, or off`;
  return null;
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
