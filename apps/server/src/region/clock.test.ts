import { describe, expect, it } from "vitest";
import { createLogger } from "../log";
import { now, parseTestClock, systemClock, testClock, windowClockFromEnv } from "./clock";

const log = createLogger("silent", "clock-test");

describe("the window clock", () => {
  it("is the system's by default", () => {
    expect(windowClockFromEnv({}, log)).toBe(systemClock);
    expect(systemClock.delay(1234)).toBe(1234);
    const before = Date.now();
    const read = systemClock.now().getTime();
    expect(read).toBeGreaterThanOrEqual(before);
    expect(read).toBeLessThanOrEqual(Date.now());
    expect(now()).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it.each([
    ["1764650000000x60", { anchorMs: 1764650000000, rate: 60 }],
    [" 5x1 ", { anchorMs: 5, rate: 1 }],
    ["1764650000000x0", null],
    ["1764650000000", null],
    ["x60", null],
    ["1764650000000x60x2", null],
    ["soon", null],
  ])("BOOTSTREAM_TEST_CLOCK %j → %j", (text, parsed) => expect(parseTestClock(text)).toEqual(parsed));

  it("a test clock runs `rate` times as fast from its anchor, and shortens timers to match", () => {
    const anchor = Date.now() - 1000;
    const clock = testClock(anchor, 60);
    // Bracketed by the real clock read either side: 60 test milliseconds per real one since the anchor.
    const before = Date.now();
    const read = clock.now().getTime();
    const after = Date.now();
    expect(read).toBeGreaterThanOrEqual(anchor + (before - anchor) * 60);
    expect(read).toBeLessThanOrEqual(anchor + (after - anchor) * 60);
    expect(clock.delay(60_000)).toBe(1000);
    expect(clock.delay(1)).toBe(1);
  });

  it("honours BOOTSTREAM_TEST_CLOCK only under NODE_ENV=test, and refuses a bad one", () => {
    const anchor = Date.now() - 1000;
    const fast = windowClockFromEnv({ NODE_ENV: "test", BOOTSTREAM_TEST_CLOCK: `${anchor}x60` }, log);
    expect(fast.delay(60_000)).toBe(1000);
    expect(windowClockFromEnv({ NODE_ENV: "production", BOOTSTREAM_TEST_CLOCK: `${anchor}x60` }, log)).toBe(
      systemClock,
    );
    expect(() => windowClockFromEnv({ NODE_ENV: "test", BOOTSTREAM_TEST_CLOCK: "tomorrow" }, log)).toThrow(
      /<epoch ms>x<rate>/,
    );
  });
});
