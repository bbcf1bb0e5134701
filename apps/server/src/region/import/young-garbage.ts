import v8 from "node:v8";
import { runInNewContext } from "node:vm";

// Every chunk a socket reads is a fresh 64 KiB buffer, freed only when V8 collects the small Buffer
// object that owns it. An import allocates little else, so the young generation (kept at 1 MiB by
// bin/bootstream.js) fills slowly: a thousand chunks, 60+ MiB of buffers already hashed and written,
// can wait for the next scavenge, and that garbage was most of the region's peak during an import
// (docs/benchmarks.md, issue 15). A minor collection after every `everyBytes` received bounds it.
// A scavenge of a 1 MiB young generation takes well under a millisecond; at 8 MiB that is ~130 a GB.

/** Bytes received between two minor collections. */
export const YOUNG_GC_EVERY_BYTES = 8 * 1024 * 1024;

type Gc = (options: { type: "minor" }) => void;
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
  collect: (() => void) | null = defaultCollect(),
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

function defaultCollect(): (() => void) | null {
  const gc = collector();
  return gc === null ? null : () => gc({ type: "minor" });
}
