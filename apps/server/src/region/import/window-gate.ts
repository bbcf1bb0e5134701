import { windowState, type ImportWindow } from "@bootstream/images";
import { systemClock, type WindowClock } from "../clock";

/** setTimeout's longest delay; a later change is re-checked when this one fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type WindowGateEvents = {
  /** The window opened (or was lifted). */
  opened(): void;
  /** The window closed at its end (or a new one does not include now). */
  closed(): void;
};

/**
 * settings.importWindow over time: says whether the window is open now and calls `opened`/`closed`
 * at each change, one timer at a time. The arithmetic is the domain's (`windowState`).
 */
export class WindowGate {
  private window: ImportWindow | null = null;
  private timer: NodeJS.Timeout | null = null;
  private wasOpen = true;
  private active = true;

  constructor(
    private readonly events: WindowGateEvents,
    private readonly clock: WindowClock = systemClock,
  ) {}

  get current(): ImportWindow | null {
    return this.window;
  }

  /** Open now? (Evaluated at the call, not at the last timer.) */
  get open(): boolean {
    return windowState(this.window, this.clock.now()).open;
  }

  /** When the window opens next (null when open now or without a window). */
  get opensAt(): Date | null {
    const state = windowState(this.window, this.clock.now());
    return state.open ? null : state.changesAt;
  }

  set(window: ImportWindow | null): void {
    this.window = window;
    this.active = true;
    this.evaluate();
  }

  stop(): void {
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private evaluate(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.active) return;
    const state = windowState(this.window, this.clock.now());
    const changed = state.open !== this.wasOpen;
    this.wasOpen = state.open;
    if (state.changesAt) {
      // In real milliseconds (a test clock runs faster); a timer that fires early re-arms.
      const wait = Math.min(
        MAX_TIMER_MS,
        Math.max(0, this.clock.delay(state.changesAt.getTime() - this.clock.now().getTime())),
      );
      this.timer = setTimeout(() => this.evaluate(), wait);
      this.timer.unref();
    }
    if (changed) {
      if (state.open) this.events.opened();
      else this.events.closed();
    }
  }
}
