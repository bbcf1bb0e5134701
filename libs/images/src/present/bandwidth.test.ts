import { describe, expect, it } from "vitest";
import { bandwidthInput, parseBandwidth } from "./bandwidth";

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
