import {
  IDLE_IMPORT,
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
} from "@bootstream/protocol";

/**
 * What every client has been told, folded from the events as they leave. A snapshot is read from
 * here synchronously, so its `seq` and its contents always agree: a client that applies the events
 * after `seq` ends up exactly where the region is.
 */
export class LiveState {
  images = new Map<string, ImageState>();
  racks = new Map<string, RackState>();
  selection: Selection = { revision: 0, items: [] };
  settings: Settings = { autoImport: true, bandwidthLimit: null };
  source: SourceState = { url: "", keyringSet: false, lastFetch: null, error: null };
  importState: ImportState = { ...IDLE_IMPORT };
  /** This node's health (set by region/health.ts; per node, never replicated). */
  health: HealthState = {
    status: "ok",
    role: "single",
    checks: { database: "ok", redis: "n/a" },
    errors: {},
  };

  apply<E extends EventName>(event: E, payload: EventPayloads[E]): void {
    switch (event) {
      case "image": {
        const { image } = payload as EventPayloads["image"];
        this.images.set(image.id, image);
        break;
      }
      case "image:removed":
        this.images.delete((payload as EventPayloads["image:removed"]).id);
        break;
      case "selection":
        this.selection = (payload as EventPayloads["selection"]).selection;
        break;
      case "settings":
        this.settings = (payload as EventPayloads["settings"]).settings;
        break;
      case "source":
        this.source = (payload as EventPayloads["source"]).source;
        break;
      case "import":
        this.importState = (payload as EventPayloads["import"]).import;
        break;
      case "rack": {
        const { rack } = payload as EventPayloads["rack"];
        this.racks.set(rack.name, rack);
        break;
      }
      case "rack:removed":
        this.racks.delete((payload as EventPayloads["rack:removed"]).name);
        break;
      default:
        break;
    }
  }

  snapshot(you: PresenceUser): Snapshot {
    return {
      images: [...this.images.values()].sort((a, b) => a.id.localeCompare(b.id)),
      selection: this.selection,
      settings: this.settings,
      source: this.source,
      racks: [...this.racks.values()].sort((a, b) => a.name.localeCompare(b.name)),
      import: this.importState,
      you,
      health: this.health,
    };
  }
}
