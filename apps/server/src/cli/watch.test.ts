import { describe, expect, it } from "vitest";
import { changedLines } from "./watch";

const lines = (...pairs: [string, string][]) => new Map(pairs);

describe("changedLines (status --watch into a pipe)", () => {
  it.each([
    [
      "prints everything the first time",
      lines(),
      lines(["header", "h"], ["image:a", "a queued"]),
      ["h", "a queued"],
    ],
    ["prints nothing when nothing changed", lines(["image:a", "a"]), lines(["image:a", "a"]), []],
    [
      "prints only the changed line",
      lines(["header", "h"], ["image:a", "a queued"], ["image:b", "b synced"]),
      lines(["header", "h"], ["image:a", "a downloading 5%"], ["image:b", "b synced"]),
      ["a downloading 5%"],
    ],
    [
      "says what went away",
      lines(["image:a", "a"], ["rack:r1", "rack r1: online"]),
      lines(),
      ["removed a", "removed rack r1"],
    ],
  ] as [string, Map<string, string>, Map<string, string>, string[]][])("%s", (_, before, after, out) => {
    expect(changedLines(before, after)).toEqual(out);
  });
});
