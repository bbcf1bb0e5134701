/**
 * Runs async jobs one at a time, in arrival order.
 *
 * better-sqlite3 gives TypeORM a single connection, and TypeORM will happily interleave two
 * transactions' statements on it (BEGIN … BEGIN fails, or worse, one commits the other's writes).
 * Every write on SQLite goes through one of these.
 */
export class WriteQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  run<T>(job: () => Promise<T>): Promise<T> {
    this.pending++;
    const result = this.tail.then(job);
    this.tail = result
      .catch(() => undefined)
      .finally(() => {
        this.pending--;
      });
    return result;
  }

  get size(): number {
    return this.pending;
  }

  /** Resolves when everything queued so far has finished. */
  async drain(): Promise<void> {
    while (this.pending > 0) await this.tail;
  }
}
