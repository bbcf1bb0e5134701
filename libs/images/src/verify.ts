// Verification of a store (`store:verify`): the state a run reports, folded from what happens to
// it, and what a corrupt file means for the images that need it. Pure: no disk, clock or socket
// (`at` is the time the caller gives). The region's verifier and the rack agent's scheduled
// verify run the disk side.

import { CORRUPT_WARNING, type ImageRecord } from "./lifecycle";

export { CORRUPT_WARNING };

/** What `verify` events and the snapshot carry (see the contract's `store:verify`). */
export type VerifyState = {
  running: boolean;
  /** Whether this run fetches corrupt files again (a second `store:verify { repair: true }` turns it on). */
  repair: boolean;
  bytesDone: number;
  bytesTotal: number;
  /** sha256 of every file out of service now: found corrupt and not repaired yet (also by earlier runs). */
  corrupt: string[];
  /** sha256 of the files this run fetched again and put back in service. */
  repaired: string[];
  startedAt: string | null;
  finishedAt: string | null;
  /** Why the run ended early, or which repairs failed; null when all went well. */
  error: string | null;
};

/** How a run's `error` starts when repairs were tried and some failed (the rest of it says which). */
export const REPAIR_FAILED = "could not repair";

export const IDLE_VERIFY: VerifyState = {
  running: false,
  repair: false,
  bytesDone: 0,
  bytesTotal: 0,
  corrupt: [],
  repaired: [],
  startedAt: null,
  finishedAt: null,
  error: null,
};

export type VerifyStep =
  | { kind: "started"; repair: boolean; bytesTotal: number; at: string }
  /** A second `store:verify` while one runs joins it; `repair` only ever turns on. */
  | { kind: "joined"; repair: boolean }
  | { kind: "hashed"; bytes: number }
  | { kind: "corrupt"; sha256: string }
  | { kind: "repaired"; sha256: string }
  /** A corrupt file no image needs any more (deselected meanwhile): dropped, not repaired. */
  | { kind: "dropped"; sha256: string }
  | { kind: "finished"; error: string | null; at: string };

const without = (list: readonly string[], sha: string): string[] => list.filter((other) => other !== sha);
const withSha = (list: readonly string[], sha: string): string[] =>
  list.includes(sha) ? [...list] : [...list, sha].sort();

/**
 * Folds one step of a run into its state. Every step returns a new state; a step that does not
 * apply (bytes after the end, a second `started` while running) returns the state unchanged.
 */
export function verifyStep(state: VerifyState, step: VerifyStep): VerifyState {
  switch (step.kind) {
    case "started":
      if (state.running) return state;
      // What earlier runs found stays out of service until repaired: it is still corrupt.
      return {
        running: true,
        repair: step.repair,
        bytesDone: 0,
        bytesTotal: step.bytesTotal,
        corrupt: [...state.corrupt],
        repaired: [],
        startedAt: step.at,
        finishedAt: null,
        error: null,
      };
    case "joined":
      if (!state.running || state.repair || !step.repair) return state;
      return { ...state, repair: true };
    case "hashed":
      if (!state.running) return state;
      return { ...state, bytesDone: Math.min(state.bytesTotal, state.bytesDone + Math.max(0, step.bytes)) };
    case "corrupt":
      return { ...state, corrupt: withSha(state.corrupt, step.sha256) };
    case "repaired":
      return {
        ...state,
        corrupt: without(state.corrupt, step.sha256),
        repaired: withSha(state.repaired, step.sha256),
      };
    case "dropped":
      return { ...state, corrupt: without(state.corrupt, step.sha256) };
    case "finished":
      if (!state.running) return state;
      return {
        ...state,
        running: false,
        bytesDone: state.bytesTotal,
        finishedAt: step.at,
        error: step.error,
      };
  }
}

/**
 * A state read back after a restart: a run that was going when the region stopped did not finish;
 * `corrupt` is what the store holds out of service now (the disk is the truth).
 */
export function verifyRestored(saved: VerifyState | null, corrupt: readonly string[]): VerifyState {
  const base = saved ?? IDLE_VERIFY;
  const sorted = [...new Set(corrupt)].sort();
  if (!base.running) return { ...base, corrupt: sorted };
  return {
    ...base,
    running: false,
    corrupt: sorted,
    error: "interrupted: the region stopped before the verification ended",
  };
}

/** Outcome of a finished run for scripts: clean, everything found was repaired, or corrupt files left. */
export type VerifyOutcome = "clean" | "repaired" | "corrupt";
export function verifyOutcome(state: VerifyState): VerifyOutcome {
  if (state.corrupt.length > 0) return "corrupt";
  return state.repaired.length > 0 ? "repaired" : "clean";
}

// ---- what a corrupt file means for the images -----------------------------------------------

/** One file of an image's held version. */
export type HeldFile = { imageId: string; version: string; sha256: string; path: string };

/**
 * Per image, the paths of its held version whose contents are out of service. Images whose held
 * version needs none of `corrupt` are absent. `versions` is each image's held version.
 */
export function imagesNeeding(
  corrupt: ReadonlySet<string>,
  versions: ReadonlyMap<string, string | null>,
  files: readonly HeldFile[],
): Map<string, string[]> {
  const needing = new Map<string, string[]>();
  if (corrupt.size === 0) return needing;
  for (const file of files) {
    if (!corrupt.has(file.sha256) || versions.get(file.imageId) !== file.version) continue;
    const paths = needing.get(file.imageId) ?? [];
    paths.push(file.path);
    needing.set(file.imageId, paths);
  }
  for (const paths of needing.values()) paths.sort();
  return needing;
}

/** sha256 of every file the held versions name (not the files of an update still downloading). */
export function heldFiles(
  versions: ReadonlyMap<string, string | null>,
  files: readonly HeldFile[],
): Set<string> {
  const held = new Set<string>();
  for (const file of files) if (versions.get(file.imageId) === file.version) held.add(file.sha256);
  return held;
}

/** "corrupt in the region store: boot-kernel, squashfs; not served until repaired (bootstream verify --repair)". */
export function corruptWarning(paths: readonly string[]): string {
  const names = paths.map((path) => path.split("/").filter(Boolean).pop() ?? path);
  const shown = [...new Set(names)].slice(0, 3);
  const more = names.length > shown.length ? ` and ${names.length - shown.length} more` : "";
  return `${CORRUPT_WARNING}: ${shown.join(", ")}${more}; not served until repaired (bootstream verify --repair)`;
}

/**
 * An image's record given the corrupt paths of its held version (none: the file was repaired or
 * the image no longer needs it). Only a held (served) version gets the warning, and only a
 * corruption warning is taken back: any other warning ("not offered", "update failed") stays.
 * Null when nothing changes.
 */
export function corruptionWarned(r: ImageRecord, paths: readonly string[], at: string): ImageRecord | null {
  const held = r.state === "synced" && r.version !== null;
  const ours = r.warning?.startsWith(CORRUPT_WARNING) ?? false;
  if (paths.length === 0 || !held) {
    return ours ? { ...r, warning: null, updatedAt: at } : null;
  }
  const warning = corruptWarning(paths);
  return r.warning === warning ? null : { ...r, warning, updatedAt: at };
}
