import type { Logger } from "../log";

/** How many subjects (racks) a line of counts names. */
const SUBJECTS_SHOWN = 5;

/** One line of counts per this many ms while failures go on (as refusals are counted: refusal-log.ts). */
export const FAILURE_LOG_EVERY_MS = 10_000;

type Outage = {
  since: number;
  /** Failures since the first, all told (the recovery line says it). */
  total: number;
  /** This window's failures after the first, the subjects seen and the last error. */
  count: number;
  windowStart: number;
  subjects: Set<string>;
  error: string | null;
  timer: NodeJS.Timeout;
};

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Repeated failures of one kind of work (a rack's report while the database is down: each rack
 * reports up to twice a second), logged without a line per failure. The first failure of an outage
 * is logged at once with its error; the rest as one line of counts every `everyMs` while they go
 * on; and when every subject that failed has succeeded again, one line says it recovered. A
 * subject that went away (a rack that disconnected) is forgotten, so it does not hold the outage
 * open. At most one line per `everyMs`, plus the first and the recovery.
 */
export class FailureLog {
  /** Subjects whose last attempt failed. */
  private readonly failing = new Set<string>();
  private outage: Outage | null = null;

  constructor(
    private readonly log: Logger,
    /** "rack report": the lines read "rack report failed", "rack report failed 12 more times in 10 s". */
    private readonly what: string,
    /** The field naming the subject in the lines ("rack"). */
    private readonly subjectField: string,
    readonly everyMs: number = FAILURE_LOG_EVERY_MS,
  ) {}

  failed(subject: string, error: unknown): void {
    this.failing.add(subject);
    const outage = this.outage;
    if (!outage) {
      this.log.error({ err: error, [this.subjectField]: subject }, `${this.what} failed`);
      this.outage = {
        since: Date.now(),
        total: 1,
        count: 0,
        windowStart: Date.now(),
        subjects: new Set(),
        error: null,
        timer: this.window(),
      };
      return;
    }
    outage.total++;
    outage.count++;
    if (outage.subjects.size < SUBJECTS_SHOWN) outage.subjects.add(subject);
    outage.error = describe(error);
  }

  succeeded(subject: string): void {
    if (!this.failing.delete(subject) || this.failing.size > 0) return;
    this.end(true);
  }

  /** The subject went away: it neither fails nor recovers any more. */
  forget(subject: string): void {
    if (!this.failing.delete(subject) || this.failing.size > 0) return;
    this.end(false);
  }

  close(): void {
    if (this.outage) clearTimeout(this.outage.timer);
    this.outage = null;
    this.failing.clear();
  }

  private end(recovered: boolean): void {
    const outage = this.outage;
    if (!outage) return;
    clearTimeout(outage.timer);
    this.flush(outage);
    this.outage = null;
    if (!recovered) return;
    const seconds = Math.round((Date.now() - outage.since) / 1000);
    this.log.info(
      { failures: outage.total, seconds },
      `${this.what} recovered after ${outage.total} failure(s) in ${seconds} s`,
    );
  }

  private window(): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const outage = this.outage;
      if (!outage) return;
      this.flush(outage);
      // Still going on: the next line comes a window later.
      outage.timer = this.window();
    }, this.everyMs);
    timer.unref();
    return timer;
  }

  private flush(outage: Outage): void {
    const at = Date.now();
    // A window cut short by the recovery says how long it was.
    const seconds = Math.round(Math.min(this.everyMs, at - outage.windowStart) / 100) / 10;
    outage.windowStart = at;
    if (outage.count === 0) return;
    this.log.error(
      {
        total: outage.count,
        [`${this.subjectField}s`]: [...outage.subjects].sort(),
        err: outage.error,
        seconds,
      },
      `${this.what} failed ${outage.count} more time(s) in ${seconds} s`,
    );
    outage.count = 0;
    outage.subjects = new Set();
    outage.error = null;
  }
}
