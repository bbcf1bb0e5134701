import {
  RACK_NAMESPACE,
  type RackClientToServer,
  type RackReport,
  type RackServerToClient,
} from "@bootstream/protocol";
import { io, type Socket } from "socket.io-client";
import type { Logger } from "../log";
import type { RackCredential } from "./config";

export type RackSocket = Socket<RackServerToClient, RackClientToServer>;

export type ConnectionHandlers = {
  onConnect: () => void;
  onDisconnect: () => void;
  onManifest: (manifest: unknown) => void;
  onSyncNow: () => void;
};

export type ConnectionOptions = {
  regionUrl: string;
  name: string;
  credential: RackCredential;
  /**
   * Wait before trying again after the region refused us or closed the connection itself. Socket.IO
   * does not retry those on its own, and hammering a region that said no helps nobody.
   */
  slowRetryMs: number;
  reportTimeoutMs: number;
};

/** The `/rack` socket: reconnects forever with jittered backoff, and retries refusals slowly. */
export class RegionConnection {
  readonly socket: RackSocket;
  private readonly log: Logger;
  private readonly options: ConnectionOptions;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: ConnectionOptions, log: Logger, handlers: ConnectionHandlers) {
    this.options = options;
    this.log = log;
    // The region may sit under a path prefix (a reverse proxy): Socket.IO would read that path as the
    // namespace, so the prefix goes into `path` and the URL keeps only the origin and the namespace.
    const base = new URL(options.regionUrl);
    const prefix = base.pathname.replace(/\/+$/, "");
    this.socket = io(base.origin + RACK_NAMESPACE, {
      path: `${prefix}/socket.io`,
      auth:
        options.credential.kind === "token"
          ? { token: options.credential.value, name: options.name }
          : { secret: options.credential.value, name: options.name },
      // WebSocket only: a region cluster behind a plain load balancer needs no sticky sessions then.
      transports: ["websocket"],
      reconnection: true,
      reconnectionDelay: 1_000,
      reconnectionDelayMax: 30_000,
      randomizationFactor: 0.5,
      autoConnect: false,
    });

    this.socket.on("connect", () => {
      log.info({ region: options.regionUrl }, "connected to region");
      handlers.onConnect();
    });
    this.socket.on("disconnect", (reason) => {
      // Our own close is routine; anything else means the region went away or the link broke.
      if (reason === "io client disconnect") log.info({ reason }, "disconnected from region");
      else log.warn({ reason }, "disconnected from region");
      handlers.onDisconnect();
      // The region closed us on purpose, e.g. a newer connection under the same rack name.
      if (reason === "io server disconnect") this.retryLater("the region closed the connection");
    });
    this.socket.on("connect_error", (error) => {
      if (error.message === "unauthorized") {
        log.error(
          { region: options.regionUrl },
          options.credential.kind === "token"
            ? "the region refused the rack token (unknown, revoked, or made for another rack name)"
            : "the region refused the rack secret",
        );
      } else {
        log.warn({ region: options.regionUrl, err: connectErrorText(error) }, "cannot connect to the region");
      }
      // `active` is false when a namespace middleware refused us: no automatic retry follows.
      if (!this.socket.active) this.retryLater(error.message);
    });
    this.socket.on("manifest", (manifest) => handlers.onManifest(manifest));
    this.socket.on("sync:now", () => handlers.onSyncNow());
  }

  open(): void {
    this.socket.connect();
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  /** Sends a report when connected; a report lost to a disconnect is replaced by the one sent on connect. */
  report(report: RackReport): void {
    if (!this.socket.connected) return;
    this.socket.timeout(this.options.reportTimeoutMs).emit("report", report, (error, answer) => {
      if (error) this.log.warn({ err: error.message }, "report not acknowledged");
      else if (!answer.ok) this.log.warn({ err: answer.error ?? null }, "report refused by the region");
    });
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.socket.close();
  }

  private retryLater(why: string): void {
    if (this.closed || this.retryTimer) return;
    const delay = Math.round(this.options.slowRetryMs * (0.75 + Math.random() * 0.5));
    this.log.info({ why, retryInMs: delay }, "will retry the connection");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.closed && !this.socket.connected) this.socket.connect();
    }, delay);
  }
}

/** "websocket error" says little; the transport error underneath says ECONNREFUSED or a TLS problem. */
function connectErrorText(error: Error): string {
  // engine.io hands over the transport's error event (not an Error) as `description`.
  const description = (error as Error & { description?: { message?: unknown } }).description;
  const cause = typeof description?.message === "string" ? description.message : null;
  return cause ? `${error.message}: ${cause}` : error.message;
}
