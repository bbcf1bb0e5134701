import { windowState, type ImportWindow } from "@bootstream/images";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testClock } from "../clock";
import { WindowGate } from "./window-gate";

const MINUTE = 60_000;
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

describe("WindowGate", () => {
  // A clock 600 times as fast: a window minute lasts 100 real ms.
  const clock = testClock(Date.now(), 600);
  const events: string[] = [];
  let next: (() => void) | null = null;
  let gate: WindowGate;
  beforeEach(() => {
    gate = new WindowGate(
      {
        opened: () => {
          events.push("opened");
          next?.();
        },
        closed: () => {
          events.push("closed");
          next?.();
        },
      },
      clock,
    );
  });
  const nextEvent = () => new Promise<void>((resolve) => (next = resolve));
  afterEach(() => {
    gate.stop();
    events.length = 0;
  });

  it("is open without a window, and says nothing", () => {
    gate.set(null);
    expect(gate.open).toBe(true);
    expect(gate.opensAt).toBeNull();
    expect(gate.current).toBeNull();
    expect(events).toEqual([]);
  });

  it("closes at once on a window that excludes now, then opens and closes at its edges", async () => {
    const start = Math.ceil((clock.now().getTime() + 10 * MINUTE) / MINUTE) * MINUTE;
    const window: ImportWindow = { start: hhmm(start), end: hhmm(start + 3 * MINUTE), timezone: "UTC" };
    gate.set(window);
    expect(events).toEqual(["closed"]);
    expect(gate.open).toBe(false);
    expect(gate.opensAt?.toISOString()).toBe(new Date(start).toISOString());
    expect(gate.opensAt).toEqual(windowState(window, clock.now()).changesAt);
    await nextEvent();
    expect(events).toEqual(["closed", "opened"]);
    expect(clock.now().getTime()).toBeGreaterThanOrEqual(start);
    expect(gate.open).toBe(true);
    expect(gate.opensAt).toBeNull();
    await nextEvent();
    expect(events).toEqual(["closed", "opened", "closed"]);
    expect(clock.now().getTime()).toBeGreaterThanOrEqual(start + 3 * MINUTE);
  });

  it("opens when the window is lifted, and says nothing after stop()", async () => {
    const far = clock.now().getTime() + 6 * 60 * MINUTE;
    gate.set({ start: hhmm(far), end: hhmm(far + MINUTE), timezone: "UTC" });
    expect(events).toEqual(["closed"]);
    gate.set(null);
    expect(events).toEqual(["closed", "opened"]);
    // A window whose edge is 2 minutes (200 ms) away: stopped, the edge passes unannounced.
    const soon = Math.ceil((clock.now().getTime() + 2 * MINUTE) / MINUTE) * MINUTE;
    gate.set({ start: hhmm(clock.now().getTime() - 60 * MINUTE), end: hhmm(soon), timezone: "UTC" });
    gate.stop();
    while (clock.now().getTime() < soon + MINUTE) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(events).toEqual(["closed", "opened"]);
  });
});
