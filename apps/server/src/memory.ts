import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { dropIdleStaging } from "@bootstream/images";

// How the region and the rack agent keep their memory to what they use (docs/benchmarks.md,
// "Memory"), with V8's collector exposed to them here.
//
// During a run: every chunk a socket reads is a fresh buffer, freed only when V8 collects the small
// Buffer object that owns it. An import allocates little else, so the young generation (kept at
// 1 MiB by bin/bootstream.js) fills slowly: a thousand chunks, 60+ MiB of buffers already hashed and
// written, can wait for the next scavenge, and that garbage was most of the region's peak during an
// import. A minor collection after every `everyBytes` received bounds it. A scavenge of a 1 MiB
// young generation takes well under a millisecond; at 8 MiB that is ~130 a GB.
//
// After a run: what the run's downloads held and dropped (their read buffers, ~0.5 MiB a file) sits
// in the old generation, and V8 starts a full collection only when that generation or the memory
// outside it grows past a limit, which an idle process never does. With the staging the pools kept
// for the next run, an imported region stayed ~10 MiB over its idle size until the next import; one
// full collection once the runs are over returns it.

/** Bytes received between two minor collections. */
export const YOUNG_GC_EVERY_BYTES = 8 * 1024 * 1024;
/**
 * From the end of a run to the collection after it: the run's sockets and files close a moment
 * after it reports its end, and what they hold is only garbage once they have.
 */
export const RELEASE_DELAY_MS = 1000;

/**
 * V8's `gc`: a full collection without arguments; `{ type: "minor" }` a scavenge. Not `{ type:
 * "major" }`: node 20's V8 (11.3) runs a scavenge for it too (perf_hooks reports a minor
 * collection), which left an imported region's dropped read buffers where they were.
 */
type Gc = { (): void; (options: { type: "minor" }): void };
let gc: Gc | null | undefined;

/** V8's collector, exposed once for this process (null where the flag cannot be set). */
function collector(): Gc | null {
  if (gc !== undefined) return gc;
  try {
    v8.setFlagsFromString("--expose-gc");
    // The flag takes effect in contexts created after it: a new one hands out `gc`.
    const exposed: unknown = runInNewContext("gc");
    gc = typeof exposed === "function" ? (exposed as Gc) : null;
  } catch {
    gc = null;
  }
  return gc;
}

/**
 * Counts bytes received (negative deltas, a restarted download's, are ignored) and runs a minor
 * collection each time `everyBytes` more have come in. `collect` is V8's by default.
 */
export function youngGarbageBound(
  everyBytes = YOUNG_GC_EVERY_BYTES,
  collect: (() => void) | null = defaultMinor(),
): (deltaBytes: number) => void {
  let since = 0;
  return (deltaBytes) => {
    if (collect === null || deltaBytes <= 0) return;
    since += deltaBytes;
    if (since < everyBytes) return;
    since = 0;
    collect();
  };
}

function defaultMinor(): (() => void) | null {
  const gc = collector();
  return gc === null ? null : () => gc({ type: "minor" });
}

let pending: NodeJS.Timeout | null = null;

/**
 * Once the runs queued are over (the region's imports and checks, a store verify, a rack agent's
 * syncs), whatever they moved: after `delayMs` the staging buffers kept for the next download are
 * let go (not those of a pool a download still draws on) and V8 runs a full collection (tens of ms
 * for the region's ~30 MiB heap). Calls within the delay share one collection; the timer never
 * keeps the process alive.
 */
export function releaseAfterRun(
  delayMs = RELEASE_DELAY_MS,
  collect: (() => void) | null = defaultFull(),
): void {
  if (pending !== null) return;
  pending = setTimeout(() => {
    pending = null;
    dropIdleStaging();
    collect?.();
  }, delayMs);
  pending.unref();
}

function defaultFull(): (() => void) | null {
  const gc = collector();
  return gc === null ? null : () => gc();
}
