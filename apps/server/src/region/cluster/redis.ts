import { createHash } from "node:crypto";
import type { createAdapter as CreateAdapter } from "@socket.io/redis-streams-adapter";
import type { createClient as CreateClient } from "redis";
import type { Logger } from "../../log";
import type { PeopleServer } from "../events";
import type { Health } from "../health";

/** How often this node checks that Redis answers, and how long one check may take. */
export const REDIS_CHECK_INTERVAL_MS = 2_000;
export const REDIS_CHECK_TIMEOUT_MS = 3_000;
/** Reconnect backoff: 100 ms, 200 ms, … up to this (a returning Redis is used within it). */
export const REDIS_MAX_BACKOFF_MS = 2_000;

/** A Socket.IO packet another node broadcast on `/`: deliver it to this node's clients or not. */
export type BroadcastTap = (from: string, event: unknown, payload: unknown) => boolean;

/** A message could not be handed to Redis at all: no node received it. */
export class NotSentError extends Error {
  constructor(cause: unknown) {
    super(`Redis did not take the message: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "NotSentError";
  }
}

type Listener = (message: unknown) => void;

/**
 * This node's connection to the cluster's Redis:
 *
 * - Socket.IO broadcasts go through `@socket.io/redis-streams-adapter` (a Redis stream), which keeps
 *   packets, so a client that reconnects to any node within the recovery window gets what it missed.
 * - `publish`/`subscribe`: the nodes' own messages (forwarded commands and their answers, state
 *   requests), on pub/sub channels named after the cluster.
 * - Health: `checks.redis` fails within a few seconds of Redis going away, and clears when it answers.
 *
 * Nothing waits for a Redis that is away: the publishing connection has no offline queue, so a
 * broadcast, a publish or a command fails at once instead of running minutes later when Redis comes
 * back (the stream readers keep theirs: they resume where they were).
 */
export class RedisLink {
  private readonly pub;
  private readonly sub;
  private readonly key: string;
  private readonly recovered: (() => void)[] = [];
  private up = false;
  private lostLogged = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  /**
   * Loads the Redis client and the adapter, which only a cluster node needs (a region on its own
   * never holds them in memory), and makes the link.
   */
  static async create(url: string, clusterId: string, health: Health, log: Logger): Promise<RedisLink> {
    const [redis, adapter] = await Promise.all([import("redis"), import("@socket.io/redis-streams-adapter")]);
    return new RedisLink(url, clusterId, health, log, redis.createClient, adapter.createAdapter);
  }

  private constructor(
    private readonly url: string,
    clusterId: string,
    private readonly health: Health,
    private readonly log: Logger,
    createRedisClient: typeof CreateClient,
    private readonly createAdapter: typeof CreateAdapter,
  ) {
    // Channels, the stream and sessions are named after the cluster's database, so two clusters
    // sharing one Redis never mix.
    this.key = `bootstream#${createHash("sha256").update(clusterId).digest("hex").slice(0, 16)}`;
    const socket = {
      connectTimeout: REDIS_CHECK_TIMEOUT_MS,
      reconnectStrategy: (retries: number) => Math.min(REDIS_MAX_BACKOFF_MS, 100 * (retries + 1)),
    };
    this.pub = createRedisClient({ url: this.url, socket, disableOfflineQueue: true });
    // The adapter duplicates this client for its stream reader and its subscriber. Those must keep
    // an offline queue: a read that fails at once while Redis is away would spin the reader's loop.
    const duplicate = this.pub.duplicate.bind(this.pub);
    // The adapter saves a disconnected client's session with a SET whose promise it drops
    // (redis-streams-adapter 0.3.1, persistSession): while Redis is away that rejection would be
    // unhandled, and an unhandled rejection stops the region. A session not saved only means that
    // client gets a fresh snapshot when it comes back, so the failure is swallowed here.
    const set = this.pub.set.bind(this.pub);
    Object.assign(this.pub, {
      set: (...args: Parameters<typeof set>) => set(...args).catch(() => null),
      duplicate: (overrides?: object) => {
        const client = duplicate({ disableOfflineQueue: false, ...overrides });
        client.on("error", () => undefined); // reported once, through the publishing client
        return client;
      },
    });
    this.sub = this.pub.duplicate();
    this.pub.on("error", (error: unknown) => this.lost(error));
    this.pub.on("end", () => this.lost(new Error("connection closed")));
    const ready = () => {
      if (this.pub.isReady && this.sub.isReady) void this.check();
    };
    this.pub.on("ready", ready);
    this.sub.on("ready", ready);
  }

  /** Connects (waiting at most a check's timeout: a node starts, degraded, while Redis is away). */
  async connect(io: PeopleServer, tap: BroadcastTap): Promise<void> {
    const connecting = Promise.all([this.pub.connect(), this.sub.connect()]);
    connecting.catch(() => undefined);
    const connected = await Promise.race([
      connecting.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), REDIS_CHECK_TIMEOUT_MS).unref()),
    ]);
    if (!connected) this.lost(new Error(`no connection within ${REDIS_CHECK_TIMEOUT_MS} ms`));
    const factory = this.createAdapter(this.pub, {
      streamName: `${this.key}#stream`,
      channelPrefix: this.key,
      sessionKeyPrefix: `${this.key}#session:`,
    });
    // Socket.IO calls the adapter with `new`: a plain function that returns the adapter.
    io.adapter(function tapped(nsp: { name: string }) {
      const adapter = factory(nsp) as unknown as Tappable;
      if (nsp.name === "/") {
        // A packet from another node, before it reaches this node's clients: the cluster link folds
        // the leader's events into this node's live state and holds back stale ones (link.ts).
        const onMessage = adapter.onMessage.bind(adapter);
        adapter.onMessage = (message, offset) => {
          const packet = message.type === BROADCAST && !message.data?.requestId ? message.data?.packet : null;
          if (packet && Array.isArray(packet.data) && !tap(message.uid, packet.data[0], packet.data[1]))
            return;
          onMessage(message, offset);
        };
      }
      return adapter;
    } as never);
    this.log.info(
      { redis: this.url.replace(/\/\/[^@]*@/, "//***@") },
      "cross-node broadcast through a Redis stream",
    );
    this.schedule();
  }

  /** The Socket.IO adapter's id for this node (what a broadcast from here is tagged with). */
  static adapterUid(io: PeopleServer): string {
    return (io.of("/").adapter as unknown as { uid: string }).uid;
  }

  get ready(): boolean {
    return this.up;
  }

  /** Called each time Redis answers again after it was lost. */
  onRecovered(listener: () => void): void {
    this.recovered.push(listener);
  }

  /** Publishes on a cluster channel; resolves with how many nodes got it. */
  async publish(channel: string, message: unknown): Promise<number> {
    let count: number;
    try {
      count = await this.pub.publish(`${this.key}#${channel}`, JSON.stringify(message));
    } catch (error) {
      const name = (error as { name?: unknown } | null)?.name;
      // Offline or closed: the command never left this node. Anything else: it may have reached Redis.
      if (name === "ClientOfflineError" || name === "ClientClosedError") throw new NotSentError(error);
      throw error;
    }
    return count;
  }

  async subscribe(channel: string, listener: Listener): Promise<void> {
    await this.sub.subscribe(`${this.key}#${channel}`, (raw: string) => {
      let message: unknown;
      try {
        message = JSON.parse(raw);
      } catch {
        return;
      }
      listener(message);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.allSettled([this.pub.close(), this.sub.close()]);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.check().finally(() => this.schedule());
    }, REDIS_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** A PING within the timeout on the publishing connection, and the subscriber connected. */
  private async check(): Promise<void> {
    if (this.closed) return;
    try {
      await new Promise<void>((resolve, reject) => {
        const timeout = setTimeout(
          () => reject(new Error(`no answer to PING within ${REDIS_CHECK_TIMEOUT_MS} ms`)),
          REDIS_CHECK_TIMEOUT_MS,
        );
        this.pub.ping().then(
          () => {
            clearTimeout(timeout);
            resolve();
          },
          (error: unknown) => {
            clearTimeout(timeout);
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
      });
      if (!this.sub.isReady) throw new Error("the subscriber connection is not ready");
    } catch (error) {
      return this.lost(error);
    }
    this.found();
  }

  private lost(error: unknown): void {
    if (this.closed) return;
    const message = error instanceof Error ? error.message : String(error);
    this.health.fail("redis", `does not answer: ${message || "connection lost"}`);
    const wasUp = this.up;
    this.up = false;
    // Once per outage, not once per reconnect attempt.
    if (!this.lostLogged) {
      this.lostLogged = true;
      this.log.error(
        { err: error },
        wasUp
          ? "Redis is unreachable: events no longer cross nodes; retrying"
          : "Redis is unreachable; retrying",
      );
    }
  }

  private found(): void {
    if (this.up) return;
    const wasLost = this.lostLogged;
    this.up = true;
    this.lostLogged = false;
    this.health.ok("redis");
    if (wasLost) this.log.info("Redis answers again");
    if (wasLost) for (const listener of this.recovered) listener();
  }
}

const BROADCAST = 3; // socket.io-adapter's MessageType.BROADCAST
type Tappable = {
  onMessage(
    message: {
      uid: string;
      type: number;
      data?: { requestId?: string; packet?: { data?: unknown } };
    },
    offset?: string,
  ): void;
};
