import { request, type Dispatcher } from "undici";
import type { Logger } from "../../log";
import type { Database } from "../db/database";

export type Peer = { id: string; url: string; leader: boolean };

const HEARTBEAT_SQL = `INSERT INTO region_node (id, url, seen_at) VALUES ($1, $2, now())
  ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, seen_at = now()`;
// Peers seen within the window, the leader first (by the lease, the database's clock).
const PEERS_SQL = `SELECT n.id, n.url,
    (l.holder IS NOT NULL AND l.holder = n.id AND l.expires_at > now()) AS leader
  FROM region_node n LEFT JOIN leader_lease l ON l.id = 1
  WHERE n.id <> $1 AND n.seen_at > now() - $2 * interval '1 millisecond'
  ORDER BY leader DESC, n.seen_at DESC`;
const LEAVE_SQL = `DELETE FROM region_node WHERE id = $1`;

/** A HEAD to a peer that is down or hung must not hold a file's fetch up for long. */
const LOCATE_TIMEOUT_MS = 2_000;

/**
 * The region nodes of a cluster and where they are reached (`region_node`, PostgreSQL). Each node
 * says where it is (`ADVERTISE_URL`) a few times a lease; a node not heard of for three leases is
 * left out. Peers authenticate to each other's `/files` with the cluster's peer secret, which the
 * first node stored in the database (every node reads it; no configuration needed).
 */
export class PeerDirectory {
  private timer: NodeJS.Timeout | null = null;
  private failing = false;

  constructor(
    private readonly options: {
      db: Database;
      nodeId: string;
      url: string;
      secret: string;
      leaseMs: number;
      dispatcher: Dispatcher;
      log: Logger;
    },
  ) {}

  get url(): string {
    return this.options.url;
  }

  /** Authorization for a peer's `/files`. */
  get headers(): Record<string, string> {
    return { authorization: `Bearer ${this.options.secret}` };
  }

  async start(): Promise<void> {
    await this.heartbeat();
    const every = Math.max(500, Math.floor(this.options.leaseMs / 3));
    this.timer = setInterval(() => void this.heartbeat(), every);
    this.timer.unref();
  }

  /** Leaves the directory (best effort: a killed node simply ages out). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.options.db.source.query(LEAVE_SQL, [this.options.nodeId]).catch(() => undefined);
  }

  private async heartbeat(): Promise<void> {
    try {
      await this.options.db.source.query(HEARTBEAT_SQL, [this.options.nodeId, this.options.url]);
      if (this.failing) this.options.log.info("this node is listed among the peers again");
      this.failing = false;
    } catch (error) {
      // The database's own health check says the rest; say this once per outage.
      if (!this.failing) this.options.log.warn({ err: error }, "could not tell the peers where this node is");
      this.failing = true;
    }
  }

  /** The other nodes heard of lately, the leader first. */
  async peers(): Promise<Peer[]> {
    const rows = (await this.options.db.source.query(PEERS_SQL, [
      this.options.nodeId,
      this.options.leaseMs * 3,
    ])) as { id: string; url: string; leader: boolean }[];
    return rows.map((row) => ({ id: row.id, url: row.url, leader: row.leader === true }));
  }

  /** A peer holding the verified file (HEAD on its `/files`), the leader first; null when none does. */
  async locate(sha256: string, signal?: AbortSignal): Promise<Peer | null> {
    for (const peer of await this.peers()) {
      signal?.throwIfAborted();
      if (await this.holds(peer, sha256, signal)) return peer;
    }
    return null;
  }

  fileUrl(peer: Peer, sha256: string): string {
    return `${peer.url}/files/${sha256}`;
  }

  private async holds(peer: Peer, sha256: string, signal?: AbortSignal): Promise<boolean> {
    const timeout = AbortSignal.timeout(LOCATE_TIMEOUT_MS);
    try {
      const response = await request(this.fileUrl(peer, sha256), {
        method: "HEAD",
        headers: this.headers,
        dispatcher: this.options.dispatcher,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      await response.body.dump();
      return response.statusCode === 200;
    } catch (error) {
      signal?.throwIfAborted();
      this.options.log.debug({ err: error, peer: peer.url }, "peer did not answer");
      return false;
    }
  }
}
