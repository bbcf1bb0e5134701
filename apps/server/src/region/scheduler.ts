import { Cron } from "croner";
import type { Logger } from "../log";

/**
 * The hourly region import. The job always runs; it imports only while auto-import is on, so
 * toggling the setting takes effect at the next tick without touching the schedule.
 */
export class Scheduler {
  private readonly jobs: Cron[] = [];

  constructor(private readonly log: Logger) {}

  every(name: string, pattern: string, task: () => void | Promise<void>): void {
    const job = new Cron(
      pattern,
      {
        name,
        protect: true,
        catch: (error: unknown) => this.log.error({ err: error, job: name }, "scheduled job failed"),
      },
      async () => {
        await task();
      },
    );
    this.jobs.push(job);
    this.log.info({ job: name, pattern, next: job.nextRun()?.toISOString() }, "scheduled");
  }

  stop(): void {
    for (const job of this.jobs) job.stop();
  }
}
