// Pure rules of `bootstream mirror sync`: filters (as sstream-mirror spells them), which versions
// of a product are kept (--max), and what a run adds and prunes. No I/O here.
import { compareVersionNames } from "@bootstream/images";

export type FilterOp = "=" | "!=" | "~" | "!~";
export type Filter = { key: string; op: FilterOp; value: string; regex: RegExp | null; text: string };

export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FilterError";
  }
}

const FILTER = /^([A-Za-z0-9_.-]+)(!=|!~|=|~)(.*)$/s;

/** `key=value`, `key!=value`, `key~regex` or `key!~regex` (a regex matches anywhere unless anchored). */
export function parseFilter(text: string): Filter {
  const match = FILTER.exec(text);
  if (match === null) {
    throw new FilterError(`filter "${text}" is not key=value, key!=value, key~regex or key!~regex`);
  }
  const [, key, op, value] = match as unknown as [string, string, FilterOp, string];
  let regex: RegExp | null = null;
  if (op === "~" || op === "!~") {
    try {
      regex = new RegExp(value);
    } catch (error) {
      throw new FilterError(`filter "${text}": bad regular expression (${(error as Error).message})`);
    }
  }
  return { key, op, value, regex, text };
}

export type ProductFields = Readonly<Record<string, string | undefined>>;

function matchOne(filter: Filter, value: string | undefined): boolean {
  switch (filter.op) {
    case "=":
      return value === filter.value;
    case "!=":
      return value !== filter.value;
    case "~":
      return value !== undefined && filter.regex!.test(value);
    case "!~":
      return value === undefined || !filter.regex!.test(value);
  }
}

/**
 * Every filter must match (as sstream-mirror). A bootloader product is kept unless a filter on a
 * field it has excludes it: `release~(jammy|noble)` keeps bootloaders (they have no release), but
 * `arch=amd64` drops the arm64 ones.
 */
export function productMatches(
  fields: ProductFields,
  filters: readonly Filter[],
  bootloader: boolean,
): boolean {
  return filters.every((filter) => {
    const value = fields[filter.key];
    if (bootloader && value === undefined) return true;
    return matchOne(filter, value);
  });
}

/** The version names kept: the newest `max` (all when max is undefined), oldest first. */
export function keptVersions(names: readonly string[], max: number | undefined): string[] {
  const sorted = [...names].sort(compareVersionNames);
  return max === undefined ? sorted : sorted.slice(Math.max(0, sorted.length - max));
}

/** One payload the synced mirror names. */
export type WantedFile = { path: string; sha256: string; size: number };
/** One payload already in the mirror directory, verified by an earlier run (null sha: unknown file). */
export type HeldFile = { path: string; sha256: string | null; size: number };

export type SyncPlan = {
  add: WantedFile[];
  keep: WantedFile[];
  remove: HeldFile[];
  addBytes: number;
  removeBytes: number;
};

/**
 * What a run does to the payloads: fetch what is wanted and not held with that sha256, keep the
 * rest, prune what no kept version names. Paths named twice with different sha256 are refused.
 */
export function planSync(wanted: readonly WantedFile[], held: readonly HeldFile[]): SyncPlan {
  const byPath = new Map<string, WantedFile>();
  for (const file of wanted) {
    const seen = byPath.get(file.path);
    if (seen !== undefined && seen.sha256 !== file.sha256) {
      throw new FilterError(
        `${file.path} is named with two different sha256 (${seen.sha256}, ${file.sha256})`,
      );
    }
    byPath.set(file.path, file);
  }
  const heldByPath = new Map(held.map((file) => [file.path, file]));
  const add: WantedFile[] = [];
  const keep: WantedFile[] = [];
  for (const file of [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const have = heldByPath.get(file.path);
    if (have !== undefined && have.sha256 === file.sha256 && have.size === file.size) keep.push(file);
    else add.push(file);
  }
  const remove = held.filter((file) => !byPath.has(file.path)).sort((a, b) => (a.path < b.path ? -1 : 1));
  return {
    add,
    keep,
    remove,
    addBytes: add.reduce((sum, file) => sum + file.size, 0),
    removeBytes: remove.reduce((sum, file) => sum + file.size, 0),
  };
}
