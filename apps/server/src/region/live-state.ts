import {
  applyEvent,
  applySnapshot,
  initialState,
  type ClientState,
  type EventName,
  type EventPayloads,
  type HealthState,
  type ImageState,
  type ImportState,
  type PresenceUser,
  type RackState,
  type Selection,
  type Settings,
  type Snapshot,
  type SourceState,
  type VerifyState,
} from "@bootstream/protocol";

/**
 * What every client has been told, folded from the events as they leave by the protocol's own
 * `applyEvent` (the one the dashboard and the CLI fold with), so the region and its clients cannot
 * disagree on what an event means. It is applied synchronously as each event is numbered, so a
 * snapshot's `seq` and its contents always agree: a client that applies the events after `seq`
 * ends up exactly where the region is. (The client's `foldEvent` adds gap and duplicate checks the
 * region, numbering its own events, does not need.)
 */
export class LiveState {
  #state: ClientState = {
    ...initialState(),
    ready: true,
    seq: 0,
    settings: { autoImport: true, bandwidthLimit: null, importWindow: null },
  };
  #racks: { from: readonly RackState[]; byName: ReadonlyMap<string, RackState> } = {
    from: [],
    byName: new Map(),
  };
  /** This node's health (set by region/health.ts; per node, never replicated). */
  health: HealthState = {
    status: "ok",
    role: "single",
    checks: { database: "ok", redis: "n/a" },
    errors: {},
  };

  get images(): ReadonlyMap<string, ImageState> {
    return this.#state.images;
  }

  get racks(): ReadonlyMap<string, RackState> {
    const racks = this.#state.racks;
    if (this.#racks.from !== racks)
      this.#racks = { from: racks, byName: new Map(racks.map((rack) => [rack.name, rack])) };
    return this.#racks.byName;
  }

  get selection(): Selection {
    return this.#state.selection;
  }
  set selection(selection: Selection) {
    this.#state = { ...this.#state, selection };
  }

  get settings(): Settings {
    return this.#state.settings;
  }
  set settings(settings: Settings) {
    this.#state = { ...this.#state, settings };
  }

  get source(): SourceState {
    return this.#state.source;
  }
  set source(source: SourceState) {
    this.#state = { ...this.#state, source };
  }

  get importState(): ImportState {
    return this.#state.import;
  }

  get verify(): VerifyState {
    return this.#state.verify;
  }
  set verify(verify: VerifyState) {
    this.#state = { ...this.#state, verify };
  }

  /** Seeds the images (from the database, before any event told them). */
  setImages(images: Iterable<ImageState>): void {
    const map = new Map<string, ImageState>();
    for (const image of images) map.set(image.id, image);
    this.#state = { ...this.#state, images: map, order: [...map.keys()] };
  }

  /** Seeds the racks (from the database, before any event told them). */
  setRacks(racks: Iterable<RackState>): void {
    this.#state = { ...this.#state, racks: [...racks] };
  }

  /** Replaces everything a snapshot carries (a follower taking the leader's state); health stays this node's. */
  restore(snapshot: Snapshot, seq: number): void {
    this.#state = applySnapshot(this.#state, snapshot, seq);
  }

  apply<E extends EventName>(event: E, payload: EventPayloads[E]): void {
    this.#state = applyEvent(this.#state, event, payload);
  }

  snapshot(you: PresenceUser): Snapshot {
    return {
      images: [...this.images.values()].sort((a, b) => a.id.localeCompare(b.id)),
      selection: this.selection,
      settings: this.settings,
      source: this.source,
      racks: [...this.racks.values()].sort((a, b) => a.name.localeCompare(b.name)),
      import: this.importState,
      verify: this.verify,
      you,
      health: this.health,
    };
  }
}
