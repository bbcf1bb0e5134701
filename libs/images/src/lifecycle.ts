// The image lifecycle as pure functions over plain values. Each transition takes the image's
// record (what the region keeps per image) and returns the changed record, or null when nothing
// changes. The region persists what they return; nothing here knows of a database, a clock or
// a socket (`at` is the time the caller gives).
//
// Two versions of an image can be in play:
// - the held version (`version`), whole in the store and served (state `synced`), and
// - the version being imported (`targetVersion`). With nothing held it is the image's own
//   progress (state queued / downloading / failed); with a version held it is the image's `next`
//   (`nextState`, `nextBytes*`, `nextError`) and the image keeps serving the held one.

import type {
  ImageState,
  ImageStatus,
  ImageUpdate as ImageNext,
  ImageUpdateState as NextState,
} from "./model";

export type RecordState = "queued" | "downloading" | "synced" | "failed";

export type ImageRecord = {
  id: string;
  os: string;
  release: string;
  arch: string;
  title: string;
  /** The held (served) version; null until the first import switched one in. */
  version: string | null;
  /** The version being imported (none held) or the newer one offered (one held). */
  targetVersion: string | null;
  state: RecordState;
  bytesTotal: number;
  bytesDone: number;
  error: string | null;
  /** Only with a held version and a target: where the newer version is. */
  nextState: NextState | null;
  nextBytesTotal: number;
  nextBytesDone: number;
  nextError: string | null;
  /** Trouble that does not stop the held version being served. */
  warning: string | null;
  syncedAt: string | null;
  updatedAt: string;
};

/** What an import plan says about one image. */
export type PlannedVersion = { version: string; title: string; bytesTotal: number; bytesStored: number };

/**
 * Online racks holding the image / online racks / online racks pulling it / offline racks / online
 * racks whose last sync failed without it, and the first of their errors.
 */
export type RackCounts = ImageState["racks"];

const holds = (r: ImageRecord): r is ImageRecord & { version: string } =>
  r.state === "synced" && r.version !== null;

const NO_NEXT = { nextState: null, nextBytesTotal: 0, nextBytesDone: 0, nextError: null } as const;

/** How an import run's `error` starts when an admin stopped it, or its window paused it: not failures. */
export const IMPORT_STOPPED = "stopped by ";
export const IMPORT_PAUSED = "paused: ";

/** The start of every warning a corrupt file puts on an image (see `corruptionWarned` in verify.ts). */
export const CORRUPT_WARNING = "corrupt in the region store";

/**
 * The warning an import's transition leaves on a held image: its own (`warning`, or none), unless
 * the image carries a corruption warning. That one stays for as long as the file is out of
 * service, whatever an import plans, offers or fails meanwhile: only the verifier takes it back
 * (`corruptionWarned`), when the file is repaired or the held version no longer needs it.
 */
export function importWarning(r: ImageRecord, warning: string | null): string | null {
  return r.warning?.startsWith(CORRUPT_WARNING) ? r.warning : warning;
}

/** A freshly selected image: queued until an import plans it. */
export function newImageRecord(
  id: string,
  parts: { os: string; release: string; arch: string; title: string },
  at: string,
): ImageRecord {
  return {
    id,
    ...parts,
    version: null,
    targetVersion: null,
    state: "queued",
    bytesTotal: 0,
    bytesDone: 0,
    error: null,
    ...NO_NEXT,
    warning: null,
    syncedAt: null,
    updatedAt: at,
  };
}

/** The plan is applied: the image is to hold `plan.version`. */
export function planApplied(r: ImageRecord, plan: PlannedVersion, at: string): ImageRecord | null {
  if (holds(r) && r.version === plan.version) {
    // Up to date. Offered again, so any "not offered" warning and any stale next go.
    const warning = importWarning(r, null);
    if (r.title === plan.title && r.targetVersion === null && r.warning === warning && r.nextState === null)
      return null;
    return { ...r, title: plan.title, targetVersion: null, ...NO_NEXT, warning, updatedAt: at };
  }
  if (holds(r)) {
    // The held version stays served while the newer one downloads beside it.
    return {
      ...r,
      title: plan.title,
      targetVersion: plan.version,
      nextState: "queued",
      nextBytesTotal: plan.bytesTotal,
      nextBytesDone: plan.bytesStored,
      nextError: null,
      warning: importWarning(r, null),
      updatedAt: at,
    };
  }
  return {
    ...r,
    title: plan.title,
    targetVersion: plan.version,
    state: "queued",
    bytesTotal: plan.bytesTotal,
    bytesDone: plan.bytesStored,
    error: null,
    ...NO_NEXT,
    warning: null,
    updatedAt: at,
  };
}

/**
 * A check-only run (the schedule with auto-import off): a newer version is offered and nothing
 * downloads. An image that holds nothing yet keeps its state; it just learns its version.
 */
export function versionOffered(r: ImageRecord, plan: PlannedVersion, at: string): ImageRecord | null {
  if (holds(r)) {
    if (r.version === plan.version) return null;
    if (r.targetVersion === plan.version && r.nextState !== null) return null;
    return {
      ...r,
      targetVersion: plan.version,
      nextState: "available",
      nextBytesTotal: plan.bytesTotal,
      nextBytesDone: plan.bytesStored,
      nextError: null,
      warning: importWarning(r, null),
      updatedAt: at,
    };
  }
  if (r.targetVersion === plan.version) return null;
  return {
    ...r,
    targetVersion: plan.version,
    bytesTotal: plan.bytesTotal,
    bytesDone: plan.bytesStored,
    updatedAt: at,
  };
}

/** The source no longer offers the image: a held version stays served, with a warning. */
export function notOffered(r: ImageRecord, sourceUrl: string, at: string): ImageRecord | null {
  const reason = `not offered by ${sourceUrl}`;
  if (holds(r)) {
    const warning = importWarning(r, `${reason}; keeping ${r.version}`);
    if (r.warning === warning && r.targetVersion === null) return null;
    return { ...r, targetVersion: null, ...NO_NEXT, warning, updatedAt: at };
  }
  if (r.state === "failed" && r.error === reason) return null;
  return { ...r, state: "failed", error: reason, updatedAt: at };
}

/** The first bytes of the version being imported arrived. */
export function downloadStarted(r: ImageRecord, bytesDone: number, at: string): ImageRecord | null {
  if (holds(r)) {
    if (r.nextState !== "queued") return null;
    return { ...r, nextState: "downloading", nextBytesDone: bytesDone, updatedAt: at };
  }
  if (r.state !== "queued") return null;
  return { ...r, state: "downloading", bytesDone, updatedAt: at };
}

/** More bytes arrived: only the byte count changes (kept in memory, announced coalesced). */
export function progressed(r: ImageRecord, bytesDone: number): ImageRecord | null {
  if (holds(r)) return r.nextState === "downloading" ? { ...r, nextBytesDone: bytesDone } : null;
  return r.state === "downloading" ? { ...r, bytesDone } : null;
}

/** Every file of `plan.version` is stored and verified: the image serves it now. */
export function versionSwitched(r: ImageRecord, plan: PlannedVersion, at: string): ImageRecord | null {
  const unchanged =
    holds(r) &&
    r.version === plan.version &&
    r.targetVersion === null &&
    r.bytesDone === plan.bytesTotal &&
    r.error === null &&
    r.title === plan.title;
  if (unchanged) return null;
  return {
    ...r,
    title: plan.title,
    version: plan.version,
    targetVersion: null,
    state: "synced",
    bytesTotal: plan.bytesTotal,
    bytesDone: plan.bytesTotal,
    error: null,
    ...NO_NEXT,
    // The same version again keeps a corruption warning (the verifier takes it back once the
    // fetched file is back in service); a new version's files are all stored, so it has none.
    warning: r.version === plan.version ? importWarning(r, null) : null,
    syncedAt: r.version === plan.version && r.syncedAt ? r.syncedAt : at,
    updatedAt: at,
  };
}

/** The import of the target version failed: a held version stays served, `next` says why. */
export function importFailed(r: ImageRecord, error: string, at: string): ImageRecord {
  if (holds(r)) {
    if (r.targetVersion === null)
      return { ...r, warning: importWarning(r, `update failed: ${error}`), updatedAt: at };
    return { ...r, nextState: "failed", nextError: error, updatedAt: at };
  }
  return { ...r, state: "failed", error, updatedAt: at };
}

/**
 * The import was stopped, or the region restarted in the middle of it: what was downloading goes
 * back to queued (the `.partial` files stay for the next import). Failures stay failures.
 */
export function importStopped(r: ImageRecord, at: string): ImageRecord | null {
  if (holds(r)) return r.nextState === "downloading" ? { ...r, nextState: "queued", updatedAt: at } : null;
  return r.state === "downloading" ? { ...r, state: "queued", updatedAt: at } : null;
}

/** Crash recovery is a stop that nobody asked for. */
export const recovered = importStopped;

/** Which held images a new selection drops (their rows and file lists go in the same transaction). */
export function deselected(records: readonly { id: string }[], wanted: ReadonlySet<string>): string[] {
  return records.filter((r) => !wanted.has(r.id)).map((r) => r.id);
}

/** Whether an image is still being worked on by an import (downloads pending for it). */
export function pending(r: ImageRecord): boolean {
  if (holds(r)) return r.nextState === "queued" || r.nextState === "downloading";
  return r.state === "queued" || r.state === "downloading";
}

/** `rack-synced` once every online rack holds the synced image; offline racks never hold it back. */
export function servedStatus(state: RecordState, racks: RackCounts): ImageStatus {
  return state === "synced" && racks.total > 0 && racks.synced === racks.total ? "rack-synced" : state;
}

/** The contract's ImageState of a record, given the racks' counts for it. */
export function imageState(r: ImageRecord, racks: RackCounts): ImageState {
  const held = holds(r);
  const next: ImageNext | null =
    held && r.targetVersion !== null && r.targetVersion !== r.version
      ? {
          version: r.targetVersion,
          state: r.nextState ?? "queued",
          bytesTotal: r.nextBytesTotal,
          bytesDone: r.nextBytesDone,
          error: r.nextState === "failed" ? r.nextError : null,
        }
      : null;
  return {
    id: r.id,
    os: r.os,
    release: r.release,
    arch: r.arch,
    title: r.title,
    version: held ? r.version : (r.targetVersion ?? r.version),
    state: servedStatus(r.state, racks),
    bytesTotal: r.bytesTotal,
    bytesDone: r.bytesDone,
    racks,
    error: r.state === "failed" ? r.error : null,
    warning: held ? r.warning : null,
    next,
    syncedAt: held ? r.syncedAt : null,
    updatedAt: r.updatedAt,
  };
}
