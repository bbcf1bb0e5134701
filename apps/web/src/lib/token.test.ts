import { describe, expect, it } from "vitest";
import { hashTokenChoice, tokenFromHash } from "./token";

describe("tokenFromHash", () => {
  it("takes the token and keeps the rest of the hash", () => {
    expect(tokenFromHash("#token=abc")).toEqual({ token: "abc", rest: "" });
    expect(tokenFromHash("#token=a%2Bb&view=wall")).toEqual({ token: "a+b", rest: "#view=wall" });
    expect(tokenFromHash("#view=wall")).toEqual({ token: null, rest: "#view=wall" });
    expect(tokenFromHash("")).toEqual({ token: null, rest: "" });
    expect(tokenFromHash("#token=")).toEqual({ token: null, rest: "" });
  });
});

describe("hashTokenChoice", () => {
  it.each([
    [null, null, "keep"],
    ["stored", null, "keep"],
    [null, "linked", "take"],
    ["same", "same", "take"],
    ["stored", "linked", "ask"],
  ] as const)("stored %j, link %j → %s", (stored, linked, choice) => {
    expect(hashTokenChoice(stored, linked)).toBe(choice);
  });
});
