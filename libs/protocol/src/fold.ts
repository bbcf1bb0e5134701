// The pure fold of server → client events into one client-side state.
//
// Nothing here touches a socket, a clock or the DOM: the typed client (./client) feeds it, and the
// dashboard and the CLI read the state it returns. Every function returns a new state and never
// mutates its input; parts that did not change keep their identity (structural sharing), so a UI can
// compare references to find what changed (one `image` event → one new image object, one new map).

import type { EventName, EventPayloads, Sequenced } from "./events";
import type {
  AuditEntry,
  Catalogue,
  HealthState,
  ImageState,
  ImportState,
  PresenceUser,
  RackState,
  Selection,
  Settings,
  Snapshot,
  SourceState,
  VerifyState,
} from "./state";
import { IDLE_VERIFY } from "./state";

/** How many audit entries the client keeps (newest first). */
export const AUDIT_LIMIT = 200;

/** The most entries one `audit:list` answers; older ones come page by page (`before`). */
export const AUDIT_PAGE_MAX = 100;

export type ClientState = {
  /** True once a snapshot has been folded in; events before that are ignored. */
  ready: boolean;
  /** The `seq` of the last event folded in, or null before the first snapshot. */
  seq: number | null;
  /** Images by id (`os/release/arch`). */
  images: ReadonlyMap<string, ImageState>;
  /** Image ids in display order (see `compareImages`); a new array only when ids come or go. */
  order: readonly string[];
  selection: Selection;
  /** Who saved `selection` last, when an event told us (null after a snapshot). */
  selectionBy: string | null;
  settings: Settings;
  settingsBy: string | null;
  source: SourceState;
  /** Racks sorted by name. */
  racks: readonly RackState[];
  import: ImportState;
  /** The region store's verification (`store:verify`). */
  verify: VerifyState;
  /** Who this connection is. */
  you: PresenceUser | null;
  /** Who is connected (from `presence` events). */
  users: readonly PresenceUser[];
  /** Audit entries, newest first, at most AUDIT_LIMIT. */
  audit: readonly AuditEntry[];
  /** What can be selected; null until `catalogue:get` (or `source:update`) answered. */
  catalogue: Catalogue | null;
  /** The connected node's health (null until a snapshot or `health` event told it). */
  health: HealthState | null;
};

export type FoldResult = {
  state: ClientState;
  /** The event was newer than last+1: events were missed, the client should ask `state:get`. */
  gap: boolean;
  /** False when the event was ignored (a duplicate, or before the first snapshot). */
  changed: boolean;
};

const EMPTY_IMAGES: ReadonlyMap<string, ImageState> = new Map();

export function initialState(): ClientState {
  return {
    ready: false,
    seq: null,
    images: EMPTY_IMAGES,
    order: [],
    selection: { revision: 0, items: [] },
    selectionBy: null,
    settings: { autoImport: false, bandwidthLimit: null, importWindow: null },
    settingsBy: null,
    source: { url: "", keyringSet: false, lastFetch: null, error: null },
    racks: [],
    import: { running: false, trigger: null, startedAt: null, finishedAt: null, error: null },
    verify: IDLE_VERIFY,
    you: null,
    users: [],
    audit: [],
    catalogue: null,
    health: null,
  };
}

const OS_ORDER: Record<string, number> = { ubuntu: 0, centos: 1 };
const collator = new Intl.Collator("en", { numeric: true });

/** Display order: Ubuntu first, then other OSes by name; newest release (by title) first; then arch. */
export function compareImages(a: ImageState, b: ImageState): number {
  if (a.os !== b.os) {
    const ra = OS_ORDER[a.os] ?? 2;
    const rb = OS_ORDER[b.os] ?? 2;
    return ra !== rb ? ra - rb : collator.compare(a.os, b.os);
  }
  if (a.release !== b.release) {
    return collator.compare(b.title, a.title) || collator.compare(b.release, a.release);
  }
  return collator.compare(a.arch, b.arch);
}

function orderOf(images: ReadonlyMap<string, ImageState>): string[] {
  return [...images.values()].sort(compareImages).map((image) => image.id);
}

function sortRacks(racks: readonly RackState[]): RackState[] {
  return [...racks].sort((a, b) => collator.compare(a.name, b.name));
}

/** Images in display order. */
export function imageList(state: ClientState): ImageState[] {
  const list: ImageState[] = [];
  for (const id of state.order) {
    const image = state.images.get(id);
    if (image) list.push(image);
  }
  return list;
}

/**
 * Replaces everything the snapshot carries. `seq` is the snapshot's own `seq` when it came as an
 * event; a `state:get` answer carries none, and then the last seen `seq` is kept: Socket.IO delivers
 * in order, so every event sent before the answer was built has already been folded in.
 */
export function applySnapshot(
  state: ClientState,
  snapshot: Snapshot,
  seq: number | null = null,
): ClientState {
  const images = new Map<string, ImageState>();
  for (const image of snapshot.images) images.set(image.id, image);
  const order = orderOf(images);
  return {
    ...state,
    ready: true,
    seq: seq ?? state.seq ?? 0,
    images,
    order: sameList(order, state.order) ? state.order : order,
    selection: snapshot.selection,
    selectionBy: state.selection.revision === snapshot.selection.revision ? state.selectionBy : null,
    settings: snapshot.settings,
    source: snapshot.source,
    racks: sortRacks(snapshot.racks),
    import: snapshot.import,
    // A region from before `store:verify` sends none.
    verify: snapshot.verify ?? IDLE_VERIFY,
    you: snapshot.you,
    health: snapshot.health ?? state.health,
    // A snapshot does not list who is here; keep the last presence, but never forget ourselves.
    users: state.users.length > 0 ? state.users : [snapshot.you],
  };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

/** Folds one server → client event. Never throws on a well-typed payload. */
export function foldEvent<E extends EventName>(
  state: ClientState,
  event: E,
  payload: Sequenced<EventPayloads[E]>,
): FoldResult {
  if (event === "snapshot") {
    const snapshot = payload as Sequenced<Snapshot>;
    return { state: applySnapshot(state, snapshot, seqOf(snapshot)), gap: false, changed: true };
  }
  if (!state.ready || state.seq === null) return { state, gap: false, changed: false };
  // Per node and unnumbered: applies whenever it comes, and says nothing about gaps.
  if (event === "health") {
    return {
      state: { ...state, health: (payload as EventPayloads["health"]).health },
      gap: false,
      changed: true,
    };
  }
  const seq = seqOf(payload);
  if (seq !== null && seq <= state.seq) return { state, gap: false, changed: false };
  const gap = seq !== null && seq !== state.seq + 1;
  const next = applyEvent(state, event, payload);
  return { state: { ...next, seq: seq ?? state.seq }, gap, changed: true };
}

function seqOf(payload: { seq?: unknown }): number | null {
  return typeof payload.seq === "number" && Number.isFinite(payload.seq) ? payload.seq : null;
}

/**
 * One event applied to a state, without the `seq` bookkeeping: the fold below and the region's own
 * LiveState (which numbers events as they leave, so it has no gaps to find) both use it.
 */
export function applyEvent<E extends EventName>(
  state: ClientState,
  event: E,
  payload: EventPayloads[E],
): ClientState {
  // Each case narrows the payload by the event name (the map is keyed by name, so the casts are exact).
  switch (event) {
    case "image": {
      const { image } = payload as EventPayloads["image"];
      const before = state.images.get(image.id);
      const images = new Map(state.images);
      images.set(image.id, image);
      const order =
        before && before.title === image.title && before.os === image.os ? state.order : orderOf(images);
      return { ...state, images, order: sameList(order, state.order) ? state.order : order };
    }
    case "image:removed": {
      const { id } = payload as EventPayloads["image:removed"];
      if (!state.images.has(id)) return state;
      const images = new Map(state.images);
      images.delete(id);
      return { ...state, images, order: state.order.filter((other) => other !== id) };
    }
    case "selection": {
      const { selection, by } = payload as EventPayloads["selection"];
      return { ...state, selection, selectionBy: by };
    }
    case "settings": {
      const { settings, by } = payload as EventPayloads["settings"];
      return { ...state, settings, settingsBy: by };
    }
    case "source":
      return { ...state, source: (payload as EventPayloads["source"]).source };
    case "import":
      return { ...state, import: (payload as EventPayloads["import"]).import };
    case "verify":
      return { ...state, verify: (payload as EventPayloads["verify"]).verify };
    case "rack": {
      const { rack } = payload as EventPayloads["rack"];
      const racks = state.racks.filter((other) => other.name !== rack.name);
      racks.push(rack);
      return { ...state, racks: sortRacks(racks) };
    }
    case "rack:removed": {
      const { name } = payload as EventPayloads["rack:removed"];
      return { ...state, racks: state.racks.filter((rack) => rack.name !== name) };
    }
    case "presence":
      return { ...state, users: (payload as EventPayloads["presence"]).users };
    case "audit":
      return withAuditEntries(state, [(payload as EventPayloads["audit"]).entry]);
    default:
      return state;
  }
}

function auditKey(entry: AuditEntry): string {
  return `${entry.at}\u0000${entry.by}\u0000${entry.action}\u0000${entry.detail}`;
}

/**
 * Merges audit entries (from `audit:list`, or live `audit` events) into the feed: no duplicates,
 * newest first, at most `limit`.
 */
export function withAuditEntries(
  state: ClientState,
  entries: readonly AuditEntry[],
  limit: number = AUDIT_LIMIT,
): ClientState {
  if (entries.length === 0) return state;
  const seen = new Set<string>();
  const merged: AuditEntry[] = [];
  for (const entry of [...entries, ...state.audit]) {
    const key = auditKey(entry);
    if (seen.has(key)) continue;
    seen.add(key);
    merged.push(entry);
  }
  // Stable sort: entries with the same timestamp keep the order they came in.
  merged.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  return { ...state, audit: merged.slice(0, limit) };
}

export function withCatalogue(state: ClientState, catalogue: Catalogue): ClientState {
  return { ...state, catalogue };
}

/** Takes a selection from a command answer (a save, or a `conflict` error) if it is newer than ours. */
export function withSelection(
  state: ClientState,
  selection: Selection,
  by: string | null = null,
): ClientState {
  if (selection.revision <= state.selection.revision) return state;
  return { ...state, selection, selectionBy: by };
}
