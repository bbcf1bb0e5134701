import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Role } from "@bootstream/protocol";

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

  constructor() {
    collectDefaultMetrics({ register: this.registry });
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
