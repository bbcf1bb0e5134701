// Selection keys: an image is "os/release/arch"; a selection is a set of keys. The contract's items
// ({ os, release, arches }) convert to and from it, and an edit (the CLI's select/deselect, the
// dashboard's checkboxes) is set arithmetic on keys, then normalised back to items.

import type { SelectionItem } from "../model";
import { normaliseSelectionItems } from "../selection";

export type Keys = ReadonlySet<string>;

/** The protocol's limit on one item's arches (selectionItemSchema); the region merges items of one release. */
export const MAX_ARCHES_PER_ITEM = 32;

export const imageKey = (os: string, release: string, arch: string): string => `${os}/${release}/${arch}`;

export function splitKey(k: string): [os: string, release: string, arch: string] {
  const [os = "", release = "", arch = ""] = k.split("/");
  return [os, release, arch];
}

export function selectionKeys(selection: { readonly items: readonly SelectionItem[] }): Set<string> {
  const keys = new Set<string>();
  for (const item of selection.items)
    for (const arch of item.arches) keys.add(imageKey(item.os, item.release, arch));
  return keys;
}

/**
 * Keys → items: normalised (one per os/release, arches sorted, items sorted by os then release),
 * then split so no item has more than MAX_ARCHES_PER_ITEM arches.
 */
export function keysToItems(keys: Iterable<string>): SelectionItem[] {
  const items: SelectionItem[] = [];
  for (const k of keys) {
    const [os, release, arch] = splitKey(k);
    items.push({ os, release, arches: [arch] });
  }
  return normaliseSelectionItems(items).flatMap((item) => {
    const parts: SelectionItem[] = [];
    for (let i = 0; i < item.arches.length; i += MAX_ARCHES_PER_ITEM)
      parts.push({ ...item, arches: item.arches.slice(i, i + MAX_ARCHES_PER_ITEM) });
    return parts;
  });
}

/** `items` with `arches` of os/release added. */
export function selectArches(
  items: readonly SelectionItem[],
  os: string,
  release: string,
  arches: readonly string[],
): SelectionItem[] {
  const keys = selectionKeys({ items });
  for (const arch of arches) keys.add(imageKey(os, release, arch));
  return keysToItems(keys);
}

/** `items` without `arches` of os/release, or without the whole release when `arches` is null. */
export function deselectArches(
  items: readonly SelectionItem[],
  os: string,
  release: string,
  arches: readonly string[] | null,
): SelectionItem[] {
  const keys = selectionKeys({ items });
  for (const k of [...keys]) {
    const [o, r, a] = splitKey(k);
    if (o === os && r === release && (arches === null || arches.includes(a))) keys.delete(k);
  }
  return keysToItems(keys);
}

export function sameKeys(a: Keys, b: Keys): boolean {
  if (a.size !== b.size) return false;
  for (const k of a) if (!b.has(k)) return false;
  return true;
}

export type KeyDiff = { added: string[]; removed: string[] };

export function diffKeys(from: Keys, to: Keys): KeyDiff {
  return {
    added: [...to].filter((k) => !from.has(k)).sort(),
    removed: [...from].filter((k) => !to.has(k)).sort(),
  };
}

/**
 * Our edits (base → mine) replayed on someone else's newer selection (theirs): what we added is added,
 * what we removed is removed, everything else is theirs.
 */
export function rebase(base: Keys, mine: Keys, theirs: Keys): Set<string> {
  const { added, removed } = diffKeys(base, mine);
  const result = new Set(theirs);
  for (const k of added) result.add(k);
  for (const k of removed) result.delete(k);
  return result;
}

/** "added Ubuntu 24.04 LTS arm64; removed CentOS 7 amd64" (at most `max` names per list). */
export function describeDiff(diff: KeyDiff, label: (k: string) => string, max = 6): string {
  const list = (keys: string[]): string => {
    const names = keys.slice(0, max).map(label);
    if (keys.length > max) names.push(`${keys.length - max} more`);
    return names.join(", ");
  };
  const parts: string[] = [];
  if (diff.added.length) parts.push(`added ${list(diff.added)}`);
  if (diff.removed.length) parts.push(`removed ${list(diff.removed)}`);
  return parts.length ? parts.join("; ") : "no change to the images";
}

/** Releases of `os` with at least one arch selected. */
export function selectedReleases(keys: Keys, os: string): Set<string> {
  const releases = new Set<string>();
  for (const k of keys) {
    const [o, release] = splitKey(k);
    if (o === os) releases.add(release);
  }
  return releases;
}

/** Arches of `os`, any release. */
export function selectedArches(keys: Keys, os: string): Set<string> {
  const arches = new Set<string>();
  for (const k of keys) {
    const [o, , arch] = splitKey(k);
    if (o === os) arches.add(arch);
  }
  return arches;
}

export type ArchState = "on" | "off" | "mixed";

/** Whether `arch` is selected for every, none or some of the selected releases of `os`. */
export function archState(keys: Keys, os: string, arch: string): ArchState {
  const releases = selectedReleases(keys, os);
  let n = 0;
  for (const release of releases) if (keys.has(imageKey(os, release, arch))) n++;
  return n === 0 ? "off" : n === releases.size ? "on" : "mixed";
}

/** Selects a release with `arches`, or deselects all of its arches. */
export function toggleRelease(
  keys: Keys,
  os: string,
  release: string,
  on: boolean,
  arches: Iterable<string>,
): Set<string> {
  const next = new Set(keys);
  for (const k of keys) {
    const [o, r] = splitKey(k);
    if (o === os && r === release) next.delete(k);
  }
  if (on) for (const arch of arches) next.add(imageKey(os, release, arch));
  return next;
}

/** Adds or removes `arch` on every selected release of `os`. */
export function toggleArch(keys: Keys, os: string, arch: string, on: boolean): Set<string> {
  const next = new Set(keys);
  for (const release of selectedReleases(keys, os)) {
    if (on) next.add(imageKey(os, release, arch));
    else next.delete(imageKey(os, release, arch));
  }
  return next;
}

/** Releases of `os` for which `arch` is the only arch left: unchecking it would drop them. */
export function lastArchOf(keys: Keys, os: string, arch: string): string[] {
  const count = new Map<string, number>();
  for (const k of keys) {
    const [o, r] = splitKey(k);
    if (o === os) count.set(r, (count.get(r) ?? 0) + 1);
  }
  return [...count].filter(([r, n]) => n === 1 && keys.has(imageKey(os, r, arch))).map(([r]) => r);
}

export function toggleKey(keys: Keys, k: string, on: boolean): Set<string> {
  const next = new Set(keys);
  if (on) next.add(k);
  else next.delete(k);
  return next;
}

/** The arches selected for one release, sorted. */
export function releaseArches(keys: Keys, os: string, release: string): string[] {
  const arches: string[] = [];
  for (const k of keys) {
    const [o, r, a] = splitKey(k);
    if (o === os && r === release) arches.push(a);
  }
  return arches.sort();
}

/** Selected releases of `os` that have `arch`, sorted. */
export function archReleases(keys: Keys, os: string, arch: string): string[] {
  return [...selectedReleases(keys, os)].filter((r) => keys.has(imageKey(os, r, arch))).sort();
}

/** True when the selected releases of `os` do not all have the same arches (each is edited apart). */
export function archesDiffer(keys: Keys, os: string): boolean {
  let first: string | null = null;
  for (const release of selectedReleases(keys, os)) {
    const arches = releaseArches(keys, os, release).join(",");
    if (first === null) first = arches;
    else if (arches !== first) return true;
  }
  return false;
}

/**
 * One arch of one release on or off. Unchecking a release's last arch changes nothing (null): the
 * release is deselected with its own box, never dropped by an arch box.
 */
export function toggleReleaseArch(
  keys: Keys,
  os: string,
  release: string,
  arch: string,
  on: boolean,
): Set<string> | null {
  if (!on && releaseArches(keys, os, release).join() === arch) return null;
  return toggleKey(keys, imageKey(os, release, arch), on);
}
