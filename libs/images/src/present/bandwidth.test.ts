import { describe, expect, it } from "vitest";
import { bandwidthInput, formatBandwidth, parseBandwidth } from "./bandwidth";
import { formatRate } from "./format";

describe("a cap and a measured rate (one unit system, IEC)", () => {
  it.each([
    ["20MiB/s", 20 * 1024 ** 2, "MiB/s"],
    ["20MB/s", 20_000_000, "MiB/s"],
    ["512KiB/s", 512 * 1024, "KiB/s"],
    ["64kB/s", 64_000, "KiB/s"],
    ["2GiB/s", 2 * 1024 ** 3, "GiB/s"],
  ])("%s capped, and a download at that rate, are both shown in %s", (typed, bytes, unit) => {
    const cap = parseBandwidth(typed)!;
    expect(cap).toBe(bytes);
    // The download running at the cap, and a little under it: same unit as the cap.
    for (const shown of [formatBandwidth(cap), formatRate(cap), formatRate(cap * 0.99)])
      expect(shown.split(" ")[1]).toBe(unit);
  });

  it("shows a typed cap that fills a binary unit exactly as typed", () => {
    expect(formatBandwidth(parseBandwidth("20MiB/s"))).toBe("20 MiB/s");
    expect(formatRate(parseBandwidth("20MiB/s"))).toBe("20.0 MiB/s");
  });
});

describe("bandwidthInput (the dashboard's cap box)", () => {
  it.each([
    [20_000_000, "20MB/s"],
    [20 * 1024 ** 2, "20MiB/s"],
    [1_500_000_000, "1500MB/s"],
    [524_288, "512KiB/s"],
    [64_000, "64kB/s"],
    [1_000_000_000, "1GB/s"],
    [2 * 1024 ** 3, "2GiB/s"],
    [1_234_567, "1234567"],
  ])("gives %s back as %s, which reads as the same number", (bytes, text) => {
    expect(bandwidthInput(bytes)).toBe(text);
    expect(parseBandwidth(text)).toBe(bytes);
  });
});
