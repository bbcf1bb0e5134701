import { CommandError, type PresenceUser } from "@bootstream/protocol";
import type { Logger } from "../log";
import { BucketStore, Counter, type Rate } from "./rate-limit";
import { RefusalLog } from "./refusal-log";

/** Every bound on what clients may make the region do (docs/security.md lists them). */
export type ClientLimitsConfig = {
  /** Commands on one socket. */
  connection: Rate;
  /** Commands and API requests with one token: all its sockets and HTTP together (RATE_LIMIT_TOKEN). */
  token: Rate;
  /** Commands, API requests and socket handshakes from one address (RATE_LIMIT_ADDRESS). */
  address: Rate;
  /** Open dashboard/script sockets on one token (SOCKETS_PER_TOKEN). */
  socketsPerToken: number;
  /** Open engine.io connections from one address, authenticated or not (SOCKETS_PER_ADDRESS). */
  connectionsPerAddress: number;
  /** An engine.io connection that has joined no namespace by then is closed. */
  handshakeTimeoutMs: number;
  /** Reports on one rack connection. */
  rackReports: Rate;
  /** Refusals are logged as one line of counts this often. */
  refusalLogEveryMs: number;
};

/** A rate of `perSecond` with bursts of twice that. */
export const rate = (perSecond: number): Rate => ({ perSecond, burst: 2 * perSecond });

export const DEFAULT_CLIENT_LIMITS: ClientLimitsConfig = {
  connection: rate(20),
  token: rate(100),
  address: rate(200),
  socketsPerToken: 100,
  connectionsPerAddress: 256,
  handshakeTimeoutMs: 5_000,
  // A syncing rack reports at most twice a second.
  rackReports: { perSecond: 4, burst: 10 },
  refusalLogEveryMs: 10_000,
};

/** What a refused client is told. */
export type Refusal = { code: "rate-limited"; message: string };

/** One store of buckets and counts for the whole node: sockets, HTTP and racks draw on it. */
export class ClientLimits {
  private readonly buckets = new BucketStore();
  private readonly tokenSockets: Counter;
  readonly connections: Counter;
  readonly refusals: RefusalLog;

  constructor(
    readonly config: ClientLimitsConfig,
    log: Logger,
  ) {
    this.tokenSockets = new Counter(config.socketsPerToken);
    this.connections = new Counter(config.connectionsPerAddress);
    this.refusals = new RefusalLog(log, config.refusalLogEveryMs);
  }

  /**
   * A command on socket `socketId` from `address`, or an HTTP request (`socketId` null) whose
   * address already paid in `attempt`.
   */
  command(socketId: string | null, user: PresenceUser, address: string): Refusal | null {
    const wanted: [string, Rate][] =
      socketId === null
        ? [[`token:${user.name}`, this.config.token]]
        : [
            [`socket:${socketId}`, this.config.connection],
            [`token:${user.name}`, this.config.token],
            [`address:${address}`, this.config.address],
          ];
    const taken = this.buckets.take(wanted);
    if (taken.ok) return null;
    const refusal = this.describe(taken.key, user.name, address);
    this.refusals.refused("rate-limited", address);
    return refusal;
  }

  /** Something an address asks before it has a user: a socket handshake, an HTTP API request. */
  attempt(address: string): Refusal | null {
    const taken = this.buckets.take([[`address:${address}`, this.config.address]]);
    if (taken.ok) return null;
    this.refusals.refused("rate-limited", address);
    return this.describe(taken.key, null, address);
  }

  /** A rack's report on connection `socketId`. */
  rackReport(socketId: string): boolean {
    return this.buckets.take([[`rack:${socketId}`, this.config.rackReports]]).ok;
  }

  /** A slot for one more socket on this token, or a refusal; release it when the socket goes. */
  reserveSocket(user: PresenceUser, address: string): (() => void) | Refusal {
    const release = this.tokenSockets.reserve(user.name);
    if (release) return release;
    this.refusals.refused("sockets per token", address);
    return {
      code: "rate-limited",
      message: `token "${user.name}" already has ${this.config.socketsPerToken} open connections; close some first`,
    };
  }

  socketClosed(socketId: string): void {
    this.buckets.forget(`socket:${socketId}`);
    this.buckets.forget(`rack:${socketId}`);
  }

  close(): void {
    this.refusals.close();
  }

  private describe(key: string, token: string | null, address: string): Refusal {
    const [kind] = key.split(":");
    const { perSecond } =
      kind === "socket" ? this.config.connection : kind === "token" ? this.config.token : this.config.address;
    const where =
      kind === "socket"
        ? "on this connection"
        : kind === "token"
          ? `with token "${token}" (its connections and HTTP requests together)`
          : `from ${address}`;
    return { code: "rate-limited", message: `more than ${perSecond} commands a second ${where}; slow down` };
  }
}

export const refusalError = (refusal: Refusal): CommandError =>
  new CommandError(refusal.code, refusal.message);
