/**
 * Runs `fn` at most once per `intervalMs`. A request inside the interval is deferred to its end and
 * merged with any others, so `fn` (which reads the latest state when it runs) never sends stale data
 * and a burst of progress ticks costs one message.
 */
export class Throttle {
  private last = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly fn: () => void,
  ) {}

  request(): void {
    if (this.timer) return;
    const wait = this.last + this.intervalMs - Date.now();
    if (wait <= 0) this.fire();
    else this.timer = setTimeout(() => this.fire(), wait);
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private fire(): void {
    this.timer = null;
    this.last = Date.now();
    this.fn();
  }
}
