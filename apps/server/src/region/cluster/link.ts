import { randomBytes } from "node:crypto";
import type { EventName, EventPayloads, PresenceUser, Snapshot } from "@bootstream/protocol";
import { CommandError } from "@bootstream/protocol";
import type { Logger } from "../../log";
import type { EventBus, PeopleServer } from "../events";
import type { AnyAck, CommandRunner } from "../commands/dispatch";
import type { Sessions } from "../sessions";
import { NotSentError, RedisLink } from "./redis";

/** How long a follower waits for the leader's answer to a forwarded command (docs/protocol.md). */
export const FORWARD_TIMEOUT_MS = 20_000;
/** How long a follower waits for the leader's state when it (re)synchronises. */
export const STATE_TIMEOUT_MS = 5_000;
/** Between two tries to synchronise while no leader answers. */
const RESYNC_RETRY_MS = 1_000;
/** Events held back while a follower synchronises; more than this and it asks again. */
const HELD_MAX = 10_000;

type LeaderState = { uid: string; seq: number; snapshot: Snapshot };
type Request =
  | { kind: "command"; id: string; from: string; name: string; payload: unknown; actor: PresenceUser }
  | { kind: "state"; id: string; from: string };
type Note = { kind: "presence"; from: string } | { kind: "lead"; from: string };
type Reply = { kind: "reply"; id: string; leads: boolean; answer?: AnyAck; state?: LeaderState };
type Outcome =
  | { outcome: "answer"; reply: Reply }
  | { outcome: "none" }
  | { outcome: "not-sent" }
  | { outcome: "timeout" };
type Held = { from: string; event: EventName; payload: EventPayloads[EventName] & { seq: number } };

const STATE_READER: PresenceUser = { name: "region", role: "viewer" };

const notRun = (message: string): AnyAck => ({
  ok: false,
  error: new CommandError("internal", message).toBody(),
});

/**
 * Every state event comes from the leader, so `seq` is one counter for the whole cluster. The
 * leader's broadcasts reach the other nodes through the Redis stream (redis.ts); on each follower
 * they pass `tap` before its clients get them, so the follower's LiveState folds exactly what its
 * clients are sent, in the same order. A follower that sees a gap, a new leader, or Redis come back
 * asks the leader for its state and re-snapshots its clients: they never see a gap or a stale event.
 * Commands that change state go to the leader and come back answered within FORWARD_TIMEOUT_MS.
 */
export class ClusterLink {
  private readonly nodeId = randomBytes(8).toString("hex");
  private readonly pending = new Map<string, (reply: Reply) => void>();
  /** The adapter id of the leader whose events this node folds (null: not synchronised yet). */
  private source: string | null = null;
  private held: Held[] = [];
  private resyncing: Promise<void> | null = null;
  private known = false;
  private readonly knownWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly redis: RedisLink,
    private readonly io: PeopleServer,
    private readonly bus: EventBus,
    private readonly sessions: Sessions,
    private readonly isLeader: () => boolean,
    private readonly log: Logger,
  ) {}

  async attach(commands: CommandRunner, presenceChanged: () => void): Promise<void> {
    await Promise.all([
      this.redis.subscribe("node", (message) =>
        this.onRequest(message as Request | Note, commands, presenceChanged),
      ),
      this.redis.subscribe(`to#${this.nodeId}`, (message) => {
        const reply = message as Reply;
        if (reply.kind === "reply") this.pending.get(reply.id)?.(reply);
      }),
    ]);
    this.redis.onRecovered(() => {
      if (!this.isLeader()) void this.resync("Redis answers again");
    });
  }

  /**
   * A broadcast from another node, before this node's clients get it: true delivers it. A follower
   * folds the leader's next event and delivers it; holds back a stale one (seq already seen); and on
   * a gap or an event from a new leader, holds it and synchronises.
   */
  tap(from: string, event: unknown, payload: unknown): boolean {
    if (this.isLeader() || typeof event !== "string" || event === "snapshot") return true;
    const seq = (payload as { seq?: unknown } | null)?.seq;
    if (typeof seq !== "number") return true;
    const held: Held = { from, event: event as EventName, payload: payload as Held["payload"] };
    if (this.resyncing) {
      this.hold(held);
      return false;
    }
    if (from !== this.source) {
      this.hold(held);
      void this.resync(this.source === null ? "first event" : "events from a new leader");
      return false;
    }
    const current = this.bus.currentSeq;
    if (seq <= current) return false;
    if (seq !== current + 1) {
      this.hold(held);
      void this.resync(`missed events ${current + 1}…${seq - 1}`);
      return false;
    }
    this.bus.applyRemote(held.event, held.payload);
    return true;
  }

  /** Resolves once this node's state is the cluster's (it leads, or it synchronised), or after `ms`. */
  whenKnown(ms: number): Promise<void> {
    if (this.known) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.knownWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** This node leads now (its engine loaded the state): tell the followers to synchronise. */
  leading(): void {
    this.source = RedisLink.adapterUid(this.io);
    this.markKnown();
    this.redis.publish("node", { kind: "lead", from: this.nodeId } satisfies Note).catch(() => undefined);
  }

  /** A follower's command, run by the leader; its answer comes back as if it ran here. */
  async forward(name: string, payload: unknown, actor: PresenceUser): Promise<AnyAck> {
    const notHanded = `this region node cannot reach Redis, so "${name}" was not handed to the leader and did not run; try again once /healthz shows redis ok, or send it to the leading node`;
    if (!this.redis.ready) return notRun(notHanded);
    const result = await this.request({ kind: "command", name, payload, actor }, FORWARD_TIMEOUT_MS);
    switch (result.outcome) {
      case "answer":
        return result.reply.answer ?? notRun(`the leader sent no answer to "${name}"`);
      case "not-sent":
        return notRun(notHanded);
      case "none":
        return notRun(
          `no region node is leading right now (one takes over within seconds), so "${name}" did not run; try again`,
        );
      case "timeout":
        this.log.warn({ command: name }, "the leader did not answer a forwarded command in time");
        return notRun(
          `the leading region node did not answer "${name}" within ${FORWARD_TIMEOUT_MS / 1000} s; it may still have run it, so check the state before retrying`,
        );
    }
  }

  presence(): void {
    this.redis.publish("node", { kind: "presence", from: this.nodeId } satisfies Note).catch(() => undefined);
  }

  close(): void {
    this.closed = true;
    this.markKnown();
  }

  private hold(held: Held): void {
    this.held.push(held);
    if (this.held.length > HELD_MAX) this.held = [];
  }

  private markKnown(): void {
    if (this.known) return;
    this.known = true;
    for (const waiter of this.knownWaiters.splice(0)) waiter();
  }

  /** Asks the leader for its state until one answers (or this node leads), then takes it. */
  private resync(why: string): Promise<void> {
    return (this.resyncing ??= (async () => {
      this.log.info({ reason: why }, "synchronising with the leader");
      try {
        while (!this.closed && !this.isLeader()) {
          const result = this.redis.ready
            ? await this.request({ kind: "state" }, STATE_TIMEOUT_MS)
            : ({ outcome: "not-sent" } as const);
          if (result.outcome === "answer" && result.reply.state) {
            if (this.restore(result.reply.state)) return;
            continue;
          }
          await new Promise((resolve) => setTimeout(resolve, RESYNC_RETRY_MS));
        }
      } finally {
        this.resyncing = null;
      }
    })());
  }

  /** Takes the leader's state, then what it sent since, in order. False: ask again (a gap). */
  private restore(state: LeaderState): boolean {
    const before = { seq: this.bus.currentSeq, source: this.source };
    this.bus.restore(state.snapshot, state.seq);
    this.source = state.uid;
    const later = this.held
      .filter((held) => held.from === state.uid && held.payload.seq > state.seq)
      .sort((a, b) => a.payload.seq - b.payload.seq);
    this.held = [];
    for (const held of later) {
      if (held.payload.seq <= this.bus.currentSeq) continue;
      if (held.payload.seq !== this.bus.currentSeq + 1) return false;
      this.bus.applyRemote(held.event, held.payload);
    }
    this.log.info({ seq: this.bus.currentSeq, was: before.seq }, "synchronised with the leader");
    this.markKnown();
    if (before.seq !== this.bus.currentSeq || before.source !== this.source) {
      // What this node's clients were shown may be behind or from another leader: start them afresh.
      void this.sessions.resnapshot();
    }
    return true;
  }

  private onRequest(message: Request | Note, commands: CommandRunner, presenceChanged: () => void): void {
    if (message.from === this.nodeId) return;
    switch (message.kind) {
      case "presence":
        if (this.isLeader()) presenceChanged();
        return;
      case "lead":
        if (!this.isLeader()) void this.resync("a new leader");
        return;
      case "state": {
        const leads = this.isLeader();
        const state: LeaderState | undefined = leads
          ? {
              uid: RedisLink.adapterUid(this.io),
              seq: this.bus.currentSeq,
              snapshot: this.bus.live.snapshot(STATE_READER),
            }
          : undefined;
        return this.reply(message.from, {
          kind: "reply",
          id: message.id,
          leads,
          ...(state ? { state } : {}),
        });
      }
      case "command":
        if (!this.isLeader())
          return this.reply(message.from, { kind: "reply", id: message.id, leads: false });
        void commands
          .run(message.name, message.payload, message.actor)
          .then((answer) => this.reply(message.from, { kind: "reply", id: message.id, leads: true, answer }));
        return;
    }
  }

  private reply(to: string, reply: Reply): void {
    this.redis.publish(`to#${to}`, reply).catch((error: unknown) => {
      this.log.warn({ err: error }, "could not answer another region node");
    });
  }

  /**
   * Sends a request to every other node and waits for the leader's reply. "none": every node that
   * got it said it does not lead (nothing runs it). "not-sent": Redis never took it.
   */
  private request(
    body: Omit<Extract<Request, { kind: "command" }>, "id" | "from"> | { kind: "state" },
    timeoutMs: number,
  ): Promise<Outcome> {
    const id = randomBytes(8).toString("hex");
    return new Promise<Outcome>((resolve) => {
      let expected = Number.POSITIVE_INFINITY;
      let refusals = 0;
      const finish = (outcome: Outcome) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(outcome);
      };
      const timer = setTimeout(() => finish({ outcome: "timeout" }), timeoutMs);
      this.pending.set(id, (reply) => {
        if (reply.leads) return finish({ outcome: "answer", reply });
        if (++refusals >= expected) finish({ outcome: "none" });
      });
      this.redis.publish("node", { ...body, id, from: this.nodeId }).then(
        (count) => {
          // Every subscriber got it, this node included.
          expected = count - 1;
          if (refusals >= expected) finish({ outcome: "none" });
        },
        (error: unknown) => {
          // Not taken by Redis: nobody runs it. Otherwise it may have gone out: wait for an answer.
          if (error instanceof NotSentError) finish({ outcome: "not-sent" });
        },
      );
    });
  }
}
