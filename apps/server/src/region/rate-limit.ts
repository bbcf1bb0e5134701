/** A sustained rate with the burst allowed on top of it. */
export type Rate = { perSecond: number; burst: number };

type Bucket = { tokens: number; last: number; rate: Rate };

/** Buckets idle long enough to be full again are forgotten when the store holds more than this. */
const PRUNE_ABOVE = 10_000;

/**
 * Token buckets by key, one store for the whole region node: a socket's, a token's (all its sockets
 * and its HTTP requests together) and an address's. `take` is all or nothing, so a request refused
 * by one bucket costs the others nothing.
 */
export class BucketStore {
  private readonly buckets = new Map<string, Bucket>();
  private pruneAt = PRUNE_ABOVE;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Takes one from every bucket named, or from none; answers the first key that had nothing left. */
  take(wanted: readonly (readonly [key: string, rate: Rate])[]): { ok: true } | { ok: false; key: string } {
    const at = this.now();
    const buckets = wanted.map(([key, rate]) => this.refilled(key, rate, at));
    const empty = buckets.findIndex((bucket) => bucket.tokens < 1);
    if (empty >= 0) return { ok: false, key: wanted[empty]![0] };
    for (const bucket of buckets) bucket.tokens -= 1;
    return { ok: true };
  }

  /** A connection's bucket goes when the connection does. */
  forget(key: string): void {
    this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }

  private refilled(key: string, rate: Rate, at: number): Bucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.pruneAt) this.prune(at);
      bucket = { tokens: rate.burst, last: at, rate };
      this.buckets.set(key, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(rate.burst, bucket.tokens + ((at - bucket.last) / 1000) * rate.perSecond);
    bucket.last = at;
    bucket.rate = rate;
    return bucket;
  }

  /** A full bucket is the same as no bucket. Many keys all draining at once: scan again only at twice as many. */
  private prune(at: number): void {
    for (const [key, { tokens, last, rate }] of this.buckets) {
      if (tokens + ((at - last) / 1000) * rate.perSecond >= rate.burst) this.buckets.delete(key);
    }
    this.pruneAt = Math.max(PRUNE_ABOVE, 2 * this.buckets.size);
  }
}

/** Counts of open things by key, with a cap: reserve before the async part, release once. */
export class Counter {
  private readonly counts = new Map<string, number>();

  constructor(readonly cap: number) {}

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** A release function (idempotent), or null when `key` is at the cap. */
  reserve(key: string): (() => void) | null {
    const count = this.count(key);
    if (count >= this.cap) return null;
    this.counts.set(key, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.count(key) - 1;
      if (left > 0) this.counts.set(key, left);
      else this.counts.delete(key);
    };
  }
}

/** `::ffff:127.0.0.1` and `127.0.0.1` are one client. */
export function clientAddress(raw: string | undefined): string {
  if (!raw) return "unknown";
  return raw.startsWith("::ffff:") && raw.includes(".") ? raw.slice(7) : raw;
}
