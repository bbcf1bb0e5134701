import { describe, expect, it } from "vitest";
import {
  describeSchedule,
  describeWindow,
  importToResume,
  isTimeZone,
  mayStartImport,
  parseClockTime,
  parseWindow,
  pausesAtWindowEnd,
  windowProblem,
  windowState,
  type ImportWindow,
} from "./window";

const w = (start: string, end: string, timezone = "UTC"): ImportWindow => ({ start, end, timezone });
const iso = (date: Date | null) => date?.toISOString() ?? null;

describe("parseClockTime", () => {
  it.each([
    ["00:00", 0],
    ["01:05", 65],
    ["23:59", 1439],
    ["24:00", null],
    ["1:00", null],
    ["01:60", null],
    ["01:00:00", null],
    [" 01:00", null],
    ["", null],
  ])("%j → %j", (text, minutes) => expect(parseClockTime(text)).toBe(minutes));
});

describe("windowProblem", () => {
  it.each([
    [w("01:00", "05:00"), null],
    [w("22:00", "02:00", "Europe/Paris"), null],
    [w("1:00", "05:00"), /start "1:00" is not a time HH:MM/],
    [w("01:00", "25:00"), /end "25:00" is not a time/],
    [w("03:00", "03:00"), /same time/],
    [w("01:00", "05:00", "Mars/Olympus"), /not an IANA time zone/],
    [w("01:00", "05:00", ""), /not an IANA time zone/],
  ])("%j", (window, problem) => {
    const found = windowProblem(window);
    if (problem === null) expect(found).toBeNull();
    else expect(found).toMatch(problem);
  });

  it("knows zones by their IANA names", () => {
    expect(isTimeZone("UTC")).toBe(true);
    expect(isTimeZone("America/New_York")).toBe(true);
    expect(isTimeZone("Not/AZone")).toBe(false);
  });
});

describe("windowState", () => {
  it("is always open without a window", () => {
    expect(windowState(null, new Date("2026-01-01T12:00:00Z"))).toEqual({ open: true, changesAt: null });
  });

  it.each([
    // window, instant, open, next change
    [w("01:00", "05:00"), "2026-01-01T00:30:00Z", false, "2026-01-01T01:00:00.000Z"],
    [w("01:00", "05:00"), "2026-01-01T01:00:00Z", true, "2026-01-01T05:00:00.000Z"],
    [w("01:00", "05:00"), "2026-01-01T04:59:59Z", true, "2026-01-01T05:00:00.000Z"],
    [w("01:00", "05:00"), "2026-01-01T05:00:00Z", false, "2026-01-02T01:00:00.000Z"],
    [w("01:00", "05:00"), "2026-01-01T12:34:56.789Z", false, "2026-01-02T01:00:00.000Z"],
    // across midnight
    [w("22:00", "02:00"), "2026-01-01T23:00:00Z", true, "2026-01-02T02:00:00.000Z"],
    [w("22:00", "02:00"), "2026-01-02T01:59:00Z", true, "2026-01-02T02:00:00.000Z"],
    [w("22:00", "02:00"), "2026-01-02T02:00:00Z", false, "2026-01-02T22:00:00.000Z"],
    [w("22:00", "02:00"), "2026-01-01T21:59:30Z", false, "2026-01-01T22:00:00.000Z"],
    // a zone ahead of UTC: 01:00 Paris in winter is 00:00 UTC
    [w("01:00", "05:00", "Europe/Paris"), "2026-01-01T00:00:00Z", true, "2026-01-01T04:00:00.000Z"],
    [w("01:00", "05:00", "Europe/Paris"), "2026-07-01T00:00:00Z", true, "2026-07-01T03:00:00.000Z"],
    // a half-hour zone
    [w("01:00", "05:00", "Asia/Kolkata"), "2026-01-01T00:00:00Z", false, "2026-01-01T19:30:00.000Z"],
    // spring forward, Europe/Paris 2026-03-29: 02:00 local jumps to 03:00 (01:00 UTC)
    [w("01:00", "05:00", "Europe/Paris"), "2026-03-28T23:00:00Z", false, "2026-03-29T00:00:00.000Z"],
    [w("01:00", "05:00", "Europe/Paris"), "2026-03-29T00:00:00Z", true, "2026-03-29T03:00:00.000Z"],
    // a start inside the skipped hour opens when the clock jumps past it
    [w("02:30", "05:00", "Europe/Paris"), "2026-03-28T23:00:00Z", false, "2026-03-29T01:00:00.000Z"],
    [w("02:30", "05:00", "Europe/Paris"), "2026-03-29T01:00:00Z", true, "2026-03-29T03:00:00.000Z"],
    // an end inside the skipped hour closes at the jump
    [w("01:00", "02:30", "Europe/Paris"), "2026-03-29T00:10:00Z", true, "2026-03-29T01:00:00.000Z"],
    // fall back, Europe/Paris 2026-10-25: 03:00 local goes back to 02:00 (01:00 UTC); 01:00–05:00 local
    // is 23:00 UTC to 04:00 UTC, five hours long
    [w("01:00", "05:00", "Europe/Paris"), "2026-10-24T23:00:00Z", true, "2026-10-25T04:00:00.000Z"],
    // a window inside the repeated hour is open twice; between the two it is closed
    [w("02:00", "02:30", "Europe/Paris"), "2026-10-25T00:00:00Z", true, "2026-10-25T00:30:00.000Z"],
    [w("02:00", "02:30", "Europe/Paris"), "2026-10-25T00:30:00Z", false, "2026-10-25T01:00:00.000Z"],
    [w("02:00", "02:30", "Europe/Paris"), "2026-10-25T01:00:00Z", true, "2026-10-25T01:30:00.000Z"],
    // New York spring forward 2026-03-08 02:00 EST → 03:00 EDT (07:00 UTC)
    [w("22:00", "06:00", "America/New_York"), "2026-03-08T06:00:00Z", true, "2026-03-08T10:00:00.000Z"],
  ])("%j at %s: open %s, changes at %s", (window, at, open, changesAt) => {
    const state = windowState(window, new Date(at));
    expect({ open: state.open, changesAt: iso(state.changesAt) }).toEqual({ open, changesAt });
  });

  it("agrees with a minute-by-minute walk over a DST week", () => {
    const window = w("01:30", "02:45", "Europe/Paris");
    let at = Date.parse("2026-03-27T00:00:00Z");
    const end = Date.parse("2026-04-01T00:00:00Z");
    let state = windowState(window, new Date(at));
    while (at < end) {
      at += 60_000;
      const now = windowState(window, new Date(at));
      if (now.open !== state.open) {
        expect(iso(state.changesAt)).toBe(new Date(at).toISOString());
      } else {
        expect(iso(now.changesAt)).toBe(iso(state.changesAt));
      }
      state = now;
    }
  });

  it("refuses a bad window", () => {
    expect(() => windowState(w("03:00", "03:00"), new Date())).toThrow(RangeError);
  });
});

describe("wording and parsing", () => {
  it.each([
    [null, "any time", "Hourly", "Hourly sync off"],
    [
      w("01:00", "05:00"),
      "01:00–05:00 UTC",
      "Hourly, 01:00–05:00 UTC",
      "Hourly sync off (window 01:00–05:00 UTC)",
    ],
    [
      w("22:00", "02:00", "Europe/Paris"),
      "22:00–02:00 Europe/Paris",
      "Hourly, 22:00–02:00 Europe/Paris",
      "Hourly sync off (window 22:00–02:00 Europe/Paris)",
    ],
  ])("%j", (importWindow, text, on, off) => {
    expect(describeWindow(importWindow)).toBe(text);
    expect(describeSchedule({ autoImport: true, importWindow })).toBe(on);
    expect(describeSchedule({ autoImport: false, importWindow })).toBe(off);
  });

  it.each([
    ["01:00-05:00", undefined, w("01:00", "05:00")],
    [" 22:00 – 02:00 ", "Europe/Paris", w("22:00", "02:00", "Europe/Paris")],
    ["off", undefined, null],
    ["none", "Europe/Paris", null],
    // The zone as the runtime spells it, whatever the case typed.
    ["01:00-05:00", "utc", w("01:00", "05:00", "UTC")],
    ["01:00-05:00", "europe/paris", w("01:00", "05:00", "Europe/Paris")],
    // Only the case: an alias is never renamed to what this runtime calls its canonical zone.
    ["01:00-05:00", "Europe/Kyiv", w("01:00", "05:00", "Europe/Kyiv")],
    ["01:00-05:00", "US/Eastern", w("01:00", "05:00", "US/Eastern")],
    ["01:00-05:00", "Etc/UTC", w("01:00", "05:00", "Etc/UTC")],
  ])("parses %j (%s)", (text, tz, window) => expect(parseWindow(text, tz)).toEqual(window));

  it.each([
    ["1-5", /say e.g. 01:00-05:00/],
    ["01:00", /say e.g./],
    ["01:00-24:00", /end "24:00"/],
    ["01:00-01:00", /same time/],
  ])("refuses %j", (text, message) => expect(() => parseWindow(text)).toThrow(message));

  it("refuses an unknown zone", () =>
    expect(() => parseWindow("01:00-05:00", "Nowhere/Land")).toThrow(/IANA/));
});

describe("mayStartImport", () => {
  it.each([
    ["schedule", true, true],
    ["schedule", false, false],
    ["manual", false, true],
    ["selection", false, true],
    ["manual", true, true],
    ["selection", true, true],
  ] as const)("%s, window open %s → %s", (cause, open, may) => expect(mayStartImport(cause, open)).toBe(may));
});

describe("pausesAtWindowEnd", () => {
  it.each([
    ["schedule", false, true],
    // A saved selection joined the scheduled run: it runs on, whatever the window.
    ["schedule", true, false],
    ["manual", false, false],
    ["manual", true, false],
    ["selection", false, false],
    ["selection", true, false],
  ] as const)("%s run, selection joined %s → pauses %s", (trigger, selectionJoined, pauses) =>
    expect(pausesAtWindowEnd({ trigger, selectionJoined })).toBe(pauses),
  );
});

describe("importToResume", () => {
  it.each([
    [null, false, null],
    [null, true, "schedule"],
    ["manual", false, "manual"],
    // The unfinished run is resumed as it was; it stands for the waiting scheduled one too.
    ["manual", true, "manual"],
    ["schedule", true, "schedule"],
    ["selection", false, "selection"],
  ] as const)("unfinished %s, waiting for the window %s → %s", (unfinished, waiting, resume) =>
    expect(importToResume(unfinished, waiting)).toBe(resume),
  );
});
