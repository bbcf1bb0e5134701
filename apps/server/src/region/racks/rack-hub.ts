import { randomBytes } from "node:crypto";
import type { RackReport } from "@bootstream/protocol";
import type { Logger } from "../../log";
import type { RackRegistry } from "./rack-registry";
import { RackPresence } from "./rack-presence";
import { FAILURE_LOG_EVERY_MS, FailureLog } from "../failure-log";

/** How often a follower lists its rack sockets to the leader (cluster/rack-relay.ts). */
export const RACK_BEAT_MS = 2_000;
/** A node not heard of for this long has lost its racks (they show offline until they reconnect). */
export const RACK_STALE_MS = 5 * RACK_BEAT_MS;

/**
 * The leader's door for racks, wherever they are connected: its own `/rack` sockets, and those of
 * followers, whose hello, reports and bye reach it through Redis (cluster/rack-relay.ts). It keeps
 * which node each rack is on (RackPresence) so a late bye from a node a rack left, or a node that
 * died with its racks, is told apart; the rack rows and the rack-synced derivation stay the
 * registry's. Registrations run one at a time, in the order they arrived.
 */
export class RackHub {
  /** This node, as racks' presence names it (a follower sends its own id). */
  readonly self = randomBytes(8).toString("hex");
  private readonly presence: RackPresence;
  private queue: Promise<void> = Promise.resolve();
  /** Failed reports (the database down: every rack's, twice a second): the first, then counts. */
  private readonly reportFailures: FailureLog;

  constructor(
    private readonly racks: RackRegistry,
    /** Sends the current manifest to one rack socket, on this node or another. */
    private readonly sendManifest: (socketId: string) => void,
    private readonly log: Logger,
    staleMs = RACK_STALE_MS,
    failureLogEveryMs = FAILURE_LOG_EVERY_MS,
  ) {
    this.presence = new RackPresence(this.self, staleMs);
    this.reportFailures = new FailureLog(log, "rack report", "rack", failureLogEveryMs);
  }

  /** A rack socket opened on `node`: the rack is online there and gets the manifest. */
  hello(name: string, node: string, socketId: string): Promise<void> {
    return this.serially(() => this.register(name, node, socketId));
  }

  /**
   * A rack's report from `node`; a rack not known to be there is registered first (a hello was lost).
   * A failure is logged here, for racks on every node: the first of an outage, then counts.
   */
  async report(name: string, node: string, socketId: string, report: RackReport): Promise<void> {
    try {
      await this.serially(async () => {
        if (this.presence.where(name) !== node) await this.register(name, node, socketId);
      });
      await this.racks.report(name, report);
    } catch (error) {
      this.reportFailures.failed(name, error);
      throw error;
    }
    this.reportFailures.succeeded(name);
  }

  /** A rack socket closed on `node` (ignored when the rack is connected elsewhere now). */
  bye(name: string, node: string): Promise<void> {
    return this.serially(async () => {
      if (!this.presence.bye(name, node, Date.now())) return;
      this.reportFailures.forget(name);
      await this.racks.disconnected(name);
    });
  }

  /** A follower's list of its rack sockets: registers the new ones, drops the ones it lost. */
  beat(node: string, sockets: readonly { name: string; socket: string }[]): Promise<void> {
    return this.serially(async () => {
      const { added, gone } = this.presence.beat(
        node,
        sockets.map((s) => s.name),
        Date.now(),
      );
      for (const name of added) {
        try {
          await this.racks.connected(name);
        } catch (error) {
          this.presence.bye(name, node, Date.now());
          throw error;
        }
        const socket = sockets.find((s) => s.name === name);
        if (socket) this.sendManifest(socket.socket);
      }
      for (const name of gone) {
        this.reportFailures.forget(name);
        await this.racks.disconnected(name);
      }
    });
  }

  /** Racks of nodes not heard of lately go offline. */
  sweep(): Promise<void> {
    return this.serially(async () => {
      const stale = this.presence.stale(Date.now());
      if (stale.length > 0)
        this.log.warn({ racks: stale }, "the region node these racks were connected through went silent");
      for (const name of stale) {
        this.reportFailures.forget(name);
        await this.racks.disconnected(name);
      }
    });
  }

  /** A new term (the registry was just loaded: every rack offline): nothing is connected yet. */
  reset(): void {
    this.presence.reset();
    this.reportFailures.close();
  }

  /** Stops the failure log's timer (shutdown). */
  close(): void {
    this.reportFailures.close();
  }

  private async register(name: string, node: string, socketId: string): Promise<void> {
    await this.racks.connected(name);
    this.presence.hello(name, node, Date.now());
    this.sendManifest(socketId);
  }

  private serially(step: () => Promise<void>): Promise<void> {
    const next = this.queue.then(step);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
