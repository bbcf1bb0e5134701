import { Gauge } from "prom-client";
import type { Metrics } from "../metrics";
import type { NodeRole } from "./leadership";

/** `bootstream_leader`: 1 on the node that leads (and on a single node), 0 on a follower. */
export function leaderMetric(metrics: Metrics, role: () => NodeRole): void {
  new Gauge({
    name: "bootstream_leader",
    help: "1 while this region node leads (a single SQLite node always does), 0 while it follows",
    registers: [metrics.registry],
    collect() {
      this.set(role() === "follower" ? 0 : 1);
    },
  });
}
