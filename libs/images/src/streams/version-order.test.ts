import { describe, expect, it } from "vitest";
import { compareVersionNames, newestVersionName } from "./version-order";

describe("compareVersionNames", () => {
  it("orders each upstream naming style oldest first", () => {
    expect(["20250718", "20250615", "20250808"].sort(compareVersionNames)).toEqual([
      "20250615",
      "20250718",
      "20250808",
    ]);
    expect(["20231004.0", "20201124.0", "20230222.0"].sort(compareVersionNames)).toEqual([
      "20201124.0",
      "20230222.0",
      "20231004.0",
    ]);
    expect(["20240622_01", "20240604_01", "20211104_01"].sort(compareVersionNames)).toEqual([
      "20211104_01",
      "20240604_01",
      "20240622_01",
    ]);
  });

  it("compares serial suffixes as numbers, not text", () => {
    expect(compareVersionNames("20240622_10", "20240622_9")).toBeGreaterThan(0);
    expect(compareVersionNames("20231004.10", "20231004.2")).toBeGreaterThan(0);
    expect(compareVersionNames("20240623_01", "20240622_99")).toBeGreaterThan(0);
  });

  it("takes a name with a serial as newer than the bare date, and a pre-release word as older", () => {
    expect(compareVersionNames("20231004.0", "20231004")).toBeGreaterThan(0);
    expect(compareVersionNames("20231004.1", "20231004rc")).toBeGreaterThan(0);
  });

  it("is total and stable: equal meaning falls back to the text, identical names are equal", () => {
    expect(compareVersionNames("20240622_01", "20240622_01")).toBe(0);
    expect(Math.sign(compareVersionNames("20240622_01", "20240622.1"))).toBe(
      -Math.sign(compareVersionNames("20240622.1", "20240622_01")),
    );
    expect(compareVersionNames("20240622_01", "20240622.1")).not.toBe(0);
  });

  it("handles digit runs beyond Number's exact integers", () => {
    expect(compareVersionNames("90071992547409931", "90071992547409930")).toBeGreaterThan(0);
  });
});

describe("newestVersionName", () => {
  it("picks the newest, or undefined for none", () => {
    expect(newestVersionName(["20250615", "20250709", "20250618"])).toBe("20250709");
    expect(newestVersionName([])).toBeUndefined();
  });
});
