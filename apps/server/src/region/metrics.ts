import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { IMAGE_STATES, type ImageUpdateState } from "@bootstream/images";
import type { Role } from "@bootstream/protocol";
import type { LiveState } from "./live-state";

/** The states of `ImageState.next` (the contract's). */
const NEXT_STATES: readonly ImageUpdateState[] = ["available", "queued", "downloading", "failed"];

/** Everything /metrics exposes. One registry per region, so tests can run several regions in one process. */
export class Metrics {
  readonly registry = new Registry();
  private readonly sockets = new Gauge({
    name: "bootstream_sockets",
    help: "Connected dashboard/script sockets by role",
    labelNames: ["role"] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: "bootstream_http_requests_total",
    help: "HTTP requests by method, route and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: "bootstream_http_request_duration_seconds",
    help: "HTTP request duration by route",
    labelNames: ["route"] as const,
    buckets: [0.005, 0.025, 0.1, 0.5, 2, 10],
    registers: [this.registry],
  });

  constructor(live: LiveState) {
    collectDefaultMetrics({ register: this.registry });
    // What a 3 a.m. alert wants, read from the live state when scraped (nothing to keep in step).
    new Gauge({
      name: "bootstream_images",
      help: "Selected images by state",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        const counts = new Map<string, number>(IMAGE_STATES.map((state) => [state, 0]));
        for (const image of live.images.values()) counts.set(image.state, (counts.get(image.state) ?? 0) + 1);
        for (const [state, count] of counts) this.set({ state }, count);
      },
    });
    new Gauge({
      name: "bootstream_store_corrupt_files",
      help: "Files of the region's store found corrupt by store:verify and not repaired yet (out of service)",
      registers: [this.registry],
      collect() {
        this.set(live.verify.corrupt.length);
      },
    });
    new Gauge({
      name: "bootstream_import_running",
      help: "1 while a region import runs",
      registers: [this.registry],
      collect() {
        this.set(live.importState.running ? 1 : 0);
      },
    });
    new Gauge({
      name: "bootstream_boot_source_error",
      help: "1 when the last read of the boot source failed",
      registers: [this.registry],
      collect() {
        this.set(live.source.error ? 1 : 0);
      },
    });
    new Gauge({
      name: "bootstream_racks",
      help: "Rack controllers by online state",
      labelNames: ["online"] as const,
      registers: [this.registry],
      collect() {
        const online = [...live.racks.values()].filter((rack) => rack.online).length;
        this.set({ online: "true" }, online);
        this.set({ online: "false" }, live.racks.size - online);
      },
    });
    new Gauge({
      name: "bootstream_rack_online",
      help: "Per rack controller: 1 while it is connected, 0 while it is offline",
      labelNames: ["rack"] as const,
      registers: [this.registry],
      collect() {
        // A forgotten rack's series goes with it.
        this.reset();
        for (const rack of live.racks.values()) this.set({ rack: rack.name }, rack.online ? 1 : 0);
      },
    });
    new Gauge({
      name: "bootstream_image_warnings",
      help: "Selected images served with a warning (trouble that does not stop them being served)",
      registers: [this.registry],
      collect() {
        this.set([...live.images.values()].filter((image) => image.warning !== null).length);
      },
    });
    new Gauge({
      name: "bootstream_image_updates",
      help: "Selected images with a newer upstream version, by the update's state",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        const counts = new Map<string, number>(NEXT_STATES.map((state) => [state, 0]));
        for (const image of live.images.values())
          if (image.next) counts.set(image.next.state, (counts.get(image.next.state) ?? 0) + 1);
        for (const [state, count] of counts) this.set({ state }, count);
      },
    });
    new Gauge({
      name: "bootstream_last_import_finished_timestamp_seconds",
      help: "When the last region import finished (Unix time; 0 before the first)",
      registers: [this.registry],
      collect() {
        const at = live.importState.finishedAt;
        this.set(at ? Date.parse(at) / 1000 : 0);
      },
    });
    new Gauge({
      name: "bootstream_boot_source_last_read_timestamp_seconds",
      help: "When the boot source was last read successfully (Unix time; 0 before the first)",
      registers: [this.registry],
      collect() {
        const at = live.source.lastFetch;
        this.set(at ? Date.parse(at) / 1000 : 0);
      },
    });
    new Gauge({
      name: "bootstream_auto_import",
      help: "1 while the schedule imports new versions (auto-import on), 0 while it only marks them available",
      registers: [this.registry],
      collect() {
        this.set(live.settings.autoImport ? 1 : 0);
      },
    });
    new Gauge({
      name: "bootstream_health_degraded",
      help: "1 while this node's check fails (database, redis); /healthz answers 503 then",
      labelNames: ["check"] as const,
      registers: [this.registry],
      collect() {
        for (const [check, value] of Object.entries(live.health.checks)) {
          this.set({ check }, value === "failing" ? 1 : 0);
        }
      },
    });
    this.sockets.set({ role: "admin" }, 0);
    this.sockets.set({ role: "viewer" }, 0);
  }

  socketConnected(role: Role): void {
    this.sockets.inc({ role });
  }

  socketDisconnected(role: Role): void {
    this.sockets.dec({ role });
  }
}
