import { describe, expect, it } from "vitest";
import { FilterError, keptVersions, parseFilter, planSync, productMatches } from "./sync-plan";

describe("parseFilter", () => {
  it.each([
    ["arch=amd64", "arch", "=", "amd64"],
    ["arch!=arm64", "arch", "!=", "arm64"],
    ["release~(jammy|noble)", "release", "~", "(jammy|noble)"],
    ["release!~^o", "release", "!~", "^o"],
    ["label=", "label", "=", ""],
    ["x=a=b", "x", "=", "a=b"],
  ])("%s", (text, key, op, value) => {
    expect(parseFilter(text)).toMatchObject({ key, op, value });
  });
  it.each(["arch", "=amd64", "arch:amd64", "release~(", " arch=amd64"])("refuses %j", (text) => {
    expect(() => parseFilter(text)).toThrow(FilterError);
  });
});

describe("productMatches", () => {
  const noble = { arch: "amd64", release: "noble", os: "ubuntu" };
  const uefiArm = { arch: "arm64", os: "grub-efi-signed", "bootloader-type": "uefi" };
  const uefiAmd = { arch: "amd64", os: "grub-efi-signed", "bootloader-type": "uefi" };
  it.each([
    [noble, ["arch=amd64"], false, true],
    [noble, ["arch=arm64"], false, false],
    [noble, ["arch!=arm64"], false, true],
    [noble, ["release~(jammy|noble)"], false, true],
    [{ ...noble, release: "oracular" }, ["release~(jammy|noble)"], false, false],
    [noble, ["release!~^no"], false, false],
    [noble, ["arch=amd64", "release=jammy"], false, false],
    [noble, [], false, true],
    [noble, ["subarch=hwe"], false, false],
    [noble, ["subarch!=hwe"], false, true],
    [uefiAmd, ["arch=amd64", "release~(jammy|noble)"], true, true],
    [uefiArm, ["arch=amd64", "release~(jammy|noble)"], true, false],
    [uefiAmd, ["os=ubuntu"], true, false],
  ])("%j with %j (bootloader %s) → %s", (fields, filters, bootloader, expected) => {
    expect(productMatches(fields, filters.map(parseFilter), bootloader)).toBe(expected);
  });
});

describe("keptVersions", () => {
  it.each([
    [["20240101", "20250101", "20230101"], undefined, ["20230101", "20240101", "20250101"]],
    [["20240101", "20250101", "20230101"], 1, ["20250101"]],
    [["20240101", "20250101"], 5, ["20240101", "20250101"]],
    [["20250101.1", "20250101"], 1, ["20250101.1"]],
    [["9", "10"], 1, ["10"]],
  ] as const)("%j max %s → %j", (names, max, expected) => {
    expect(keptVersions(names, max)).toEqual(expected);
  });
});

describe("planSync", () => {
  const a = { path: "a/k", sha256: "a".repeat(64), size: 10 };
  const b = { path: "b/k", sha256: "b".repeat(64), size: 20 };
  it.each([
    ["empty mirror adds all", [a, b], [], ["a/k", "b/k"], [], []],
    ["held with the same sha keeps", [a, b], [a], ["b/k"], ["a/k"], []],
    ["held with another sha refetches", [a], [{ ...a, sha256: "c".repeat(64) }], ["a/k"], [], []],
    ["unknown held file refetches", [a], [{ ...a, sha256: null }], ["a/k"], [], []],
    ["unreferenced held prunes", [a], [a, b], [], ["a/k"], ["b/k"]],
    ["a path named twice alike is one file", [a, a], [], ["a/k"], [], []],
  ] as const)("%s", (_, wanted, held, add, keep, remove) => {
    const plan = planSync(wanted, held);
    expect(plan.add.map((f) => f.path)).toEqual(add);
    expect(plan.keep.map((f) => f.path)).toEqual(keep);
    expect(plan.remove.map((f) => f.path)).toEqual(remove);
    expect(plan.addBytes).toBe(plan.add.reduce((s, f) => s + f.size, 0));
  });
  it("refuses a path named with two sha256", () => {
    expect(() => planSync([a, { ...a, sha256: "c".repeat(64) }], [])).toThrow(/two different sha256/);
  });
});
