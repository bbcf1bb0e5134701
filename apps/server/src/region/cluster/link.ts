import type { EventName, EventPayloads, PresenceUser } from "@bootstream/protocol";
import { CommandError } from "@bootstream/protocol";
import type { Logger } from "../../log";
import type { EventBus, PeopleServer } from "../events";
import type { AnyAck, CommandRunner } from "../commands/dispatch";

/** What this module needs of Socket.IO's inter-node channel (Redis pub/sub on a cluster). */
type InterNode = {
  serverSideEmit(event: string, ...args: unknown[]): boolean;
  on(event: string, listener: (...args: never[]) => void): unknown;
};
type ForwardedCommand = { name: string; payload: unknown; actor: PresenceUser };
type Reply = (answer: AnyAck | null) => void;

/**
 * Every state event comes from the leader, so `seq` is one counter for the whole cluster. Followers
 * fold the leader's events into their own LiveState (their snapshots stay right) and hand every
 * command that changes state to the leader.
 */
export class ClusterLink {
  private readonly node: InterNode;

  constructor(
    io: PeopleServer,
    private readonly bus: EventBus,
    private readonly isLeader: () => boolean,
    private readonly log: Logger,
  ) {
    this.node = io as unknown as InterNode;
  }

  attach(commands: CommandRunner, presenceChanged: () => void): void {
    // On a cluster, the leader's events also go to the other nodes' live state.
    this.bus.subscribe((event, payload) => this.node.serverSideEmit("bus:event", event, payload));
    this.node.on("bus:event", (name: EventName, payload: EventPayloads[EventName] & { seq: number }) => {
      if (!this.isLeader()) this.bus.applyRemote(name, payload);
    });
    this.node.on("bus:command", (message: ForwardedCommand, reply: Reply) => {
      if (!this.isLeader()) return reply(null);
      void commands.run(message.name, message.payload, message.actor).then(reply);
    });
    this.node.on("bus:presence", () => {
      if (this.isLeader()) presenceChanged();
    });
  }

  /** A follower's command, run by the leader; its answer comes back as if it ran here. */
  forward(name: string, payload: unknown, actor: PresenceUser): Promise<AnyAck> {
    return new Promise((resolve) => {
      // The adapter's requestsTimeout bounds the wait (see redis.ts).
      this.node.serverSideEmit(
        "bus:command",
        { name, payload, actor },
        (error: Error | null, answers: (AnyAck | null)[]) => {
          const answer = (answers ?? []).find((a) => a !== null);
          if (answer) return resolve(answer);
          this.log.warn({ command: name, err: error }, "no leader answered a forwarded command");
          // A timeout is not "nobody leads": the leader may have run it. Do not invite a blind retry.
          const message = error
            ? `the leading region node did not answer "${name}" within 20 s; it may still have run it, so check the state before retrying`
            : "no region node is leading right now (one takes over within seconds); try again";
          resolve({ ok: false, error: new CommandError("internal", message).toBody() });
        },
      );
    });
  }

  presence(): void {
    this.node.serverSideEmit("bus:presence");
  }
}
