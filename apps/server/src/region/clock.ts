import type { Logger } from "../log";

export const now = (): string => new Date().toISOString();

/**
 * The clock import windows read: what time it is, and how many real milliseconds a span of this
 * clock's time lasts (what to give setTimeout).
 */
export type WindowClock = { now(): Date; delay(ms: number): number };

export const systemClock: WindowClock = { now: () => new Date(), delay: (ms) => ms };

/**
 * A test clock: it reads the real time at `anchorMs` and runs `rate` times as fast from there, so a
 * test crosses a window's edges (whole minutes) in seconds. A pure function of the real clock, so
 * the test computes the same time as the region.
 */
export function testClock(anchorMs: number, rate: number): WindowClock {
  return {
    now: () => new Date(anchorMs + (Date.now() - anchorMs) * rate),
    delay: (ms) => Math.ceil(ms / rate),
  };
}

/** BOOTSTREAM_TEST_CLOCK's form, `<epoch ms>x<rate>` (`1764650000000x60`); null when it is not one. */
export function parseTestClock(text: string): { anchorMs: number; rate: number } | null {
  const match = /^(\d{1,15})x(\d{1,4})$/.exec(text.trim());
  if (!match) return null;
  const rate = Number(match[2]);
  return rate >= 1 ? { anchorMs: Number(match[1]), rate } : null;
}

/**
 * The window clock from the environment: the system's, or, for tests only, BOOTSTREAM_TEST_CLOCK
 * (honoured only with NODE_ENV=test, as vitest sets it; ignored with a warning otherwise, so a stray
 * variable never moves a site's import window).
 */
export function windowClockFromEnv(env: NodeJS.ProcessEnv, log: Logger): WindowClock {
  const text = env.BOOTSTREAM_TEST_CLOCK;
  if (!text) return systemClock;
  if (env.NODE_ENV !== "test") {
    log.warn("BOOTSTREAM_TEST_CLOCK is for tests only (NODE_ENV=test): ignored");
    return systemClock;
  }
  const parsed = parseTestClock(text);
  if (!parsed)
    throw new Error(`BOOTSTREAM_TEST_CLOCK "${text}": say <epoch ms>x<rate>, e.g. 1764650000000x60`);
  log.warn(parsed, "import windows follow a test clock (BOOTSTREAM_TEST_CLOCK)");
  return testClock(parsed.anchorMs, parsed.rate);
}
