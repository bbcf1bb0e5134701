import type { Catalogue, SelectionItem } from "./model";

/**
 * What a fresh region selects: as MAAS, the most recent Ubuntu LTS release, amd64 only.
 * Relies on the catalogue listing Ubuntu releases newest first, as buildCatalogue does.
 */
export function defaultSelectionItems(catalogue: Catalogue): SelectionItem[] {
  const newestLts = catalogue.ubuntu.releases.find((release) => release.lts);
  if (newestLts === undefined || !catalogue.ubuntu.arches.includes("amd64")) return [];
  return [{ os: "ubuntu", release: newestLts.release, arches: ["amd64"] }];
}

/**
 * Problems with selecting `items` from `catalogue`, one sentence each; empty when all is offered.
 * What `kept` (the selection saved now) already holds stays selectable when the source no longer
 * offers it (a release gone end-of-life, a new mirror without it): its image is kept with a warning,
 * and a save that only changes something else, or drops it, must not be refused for it.
 */
export function validateSelectionAgainstCatalogue(
  items: readonly SelectionItem[],
  catalogue: Catalogue,
  kept: readonly SelectionItem[] = [],
): string[] {
  const keptArches = new Map(kept.map((item) => [`${item.os}/${item.release}`, new Set(item.arches)]));
  const problems: string[] = [];
  for (const item of items) {
    const name = `${item.os}/${item.release}`;
    const already = keptArches.get(name) ?? new Set<string>();
    if (item.arches.length === 0) {
      problems.push(`${name} selects no architecture`);
      continue;
    }
    let offered: readonly string[];
    if (item.os === "ubuntu") {
      const known = catalogue.ubuntu.releases.some((release) => release.release === item.release);
      offered = known ? catalogue.ubuntu.arches : [];
      if (!known && item.arches.some((arch) => !already.has(arch))) {
        problems.push(`${name} is not offered by the boot source`);
        continue;
      }
    } else {
      const entry = catalogue.other.find((other) => other.os === item.os && other.release === item.release);
      offered = entry?.arches ?? [];
      if (entry === undefined && item.arches.some((arch) => !already.has(arch))) {
        problems.push(`${name} is not offered by the boot source`);
        continue;
      }
    }
    const unknown = item.arches.filter((arch) => !offered.includes(arch) && !already.has(arch));
    if (unknown.length > 0) {
      problems.push(`${name}: ${unknown.join(", ")} not offered (offered: ${offered.join(", ") || "none"})`);
    }
  }
  return problems;
}

/**
 * One item per os/release with its arches merged, deduplicated and sorted, items sorted by
 * os then release, and items left with no arch dropped: two selections that mean the same
 * thing compare equal.
 */
export function normaliseSelectionItems(items: readonly SelectionItem[]): SelectionItem[] {
  const merged = new Map<string, SelectionItem & { archSet: Set<string> }>();
  for (const item of items) {
    const key = `${item.os}/${item.release}`;
    const entry = merged.get(key) ?? {
      os: item.os,
      release: item.release,
      arches: [],
      archSet: new Set<string>(),
    };
    for (const arch of item.arches) entry.archSet.add(arch);
    merged.set(key, entry);
  }
  return [...merged.values()]
    .filter((entry) => entry.archSet.size > 0)
    .map(({ os, release, archSet }) => ({ os, release, arches: [...archSet].sort() }))
    .sort((a, b) =>
      a.os !== b.os ? (a.os < b.os ? -1 : 1) : a.release < b.release ? -1 : a.release > b.release ? 1 : 0,
    );
}
