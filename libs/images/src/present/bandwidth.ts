// Bandwidth caps as people write and read them: "20MB/s" in, "20 MB/s" out.

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
 * A bandwidth as people write it, for the CLI and the rack agent's flag: "20MB/s", "1.5 GB/s",
 * "512KiB/s", "2000000" (bytes a second; "/s" may be left off), or "off"/"none" for no cap (null).
 * Throws a RangeError naming the accepted forms.
 */
export function parseBandwidth(text: string): number | null {
  const value = text.trim().toLowerCase();
  if (value === "off" || value === "none") return null;
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?(?:\/s|ps)?$/.exec(value);
  const bytes = match ? Math.round(Number(match[1]) * RATE_UNITS[match[2] ?? "b"]!) : NaN;
  if (!Number.isFinite(bytes) || bytes <= 0) {
    throw new RangeError(`bandwidth "${text}": say e.g. 20MB/s, 512KiB/s, 2000000 (bytes a second) or off`);
  }
  return bytes;
}

/** "20 MB/s", "1.5 GB/s", "off": the one wording of a cap for the dashboard, CLI and audit log. */
export function formatBandwidth(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null) return "off";
  const [unit, size] =
    bytesPerSecond >= 1e9
      ? ["GB", 1e9]
      : bytesPerSecond >= 1e6
        ? ["MB", 1e6]
        : bytesPerSecond >= 1e3
          ? ["kB", 1e3]
          : ["B", 1];
  return `${Number((bytesPerSecond / (size as number)).toFixed(2))} ${unit}/s`;
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
