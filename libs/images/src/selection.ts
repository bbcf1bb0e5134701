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

/** Problems with selecting `items` from `catalogue`, one sentence each; empty when all is offered. */
export function validateSelectionAgainstCatalogue(
  items: readonly SelectionItem[],
  catalogue: Catalogue,
): string[] {
  const problems: string[] = [];
  for (const item of items) {
    const name = `${item.os}/${item.release}`;
    let offered: readonly string[];
    if (item.os === "ubuntu") {
      const known = catalogue.ubuntu.releases.some((release) => release.release === item.release);
      if (!known) {
        problems.push(`${name} is not offered by the boot source`);
        continue;
      }
      offered = catalogue.ubuntu.arches;
    } else {
      const entry = catalogue.other.find((other) => other.os === item.os && other.release === item.release);
      if (entry === undefined) {
        problems.push(`${name} is not offered by the boot source`);
        continue;
      }
      offered = entry.arches;
    }
    if (item.arches.length === 0) problems.push(`${name} selects no architecture`);
    const unknown = item.arches.filter((arch) => !offered.includes(arch));
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
