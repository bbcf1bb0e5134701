import { randomBytes } from "node:crypto";
import type { RackReport } from "@bootstream/protocol";
import type { Logger } from "../../log";
import { RACK_BEAT_MS, type RackHub } from "../racks/rack-hub";
import { NotSentError, type RedisLink } from "./redis";

/** How long a follower waits for the leader to take a rack's hello or report. */
export const RACK_RELAY_TIMEOUT_MS = 5_000;

type RackSocketRef = { name: string; socket: string };
type RequestBody =
  | { kind: "hello"; name: string; socket: string }
  | { kind: "report"; name: string; socket: string; report: RackReport };
type Request = RequestBody & { id: string; from: string };
type Note =
  { kind: "bye"; from: string; name: string } | { kind: "beat"; from: string; racks: RackSocketRef[] };
type Reply = { kind: "reply"; id: string; leads: boolean; error?: string };
export type RelayAnswer = { ok: true } | { ok: false; error: string };

const CHANNEL = "racks";

/**
 * Racks on any node. A follower's `/rack` sockets are the leader's racks too: the follower checks
 * the rack's credential and its report's shape as the leader would, then hands the hello, each
 * report and the bye to the leader through Redis (pub/sub, cluster/redis.ts), which registers the
 * rack (RackHub) and answers; the manifest and `sync:now` reach the rack from the leader through the
 * Socket.IO Redis stream like every broadcast. Every RACK_BEAT_MS a follower lists its rack sockets
 * to the leader: a new leader so learns the racks connected elsewhere, and a follower that dies
 * takes its racks offline within RACK_STALE_MS. The follower serves the rack's files from its own
 * store (files.ts, with what it lacks fetched from a peer first).
 */
export class RackRelay {
  private readonly pending = new Map<string, (reply: Reply) => void>();
  private timer: NodeJS.Timeout | null = null;
  /** Per rack socket here, its latest report; `unsent`: the leader did not take it (sent again each beat). */
  private readonly latest = new Map<string, { name: string; report: RackReport }>();
  private readonly unsent = new Set<string>();
  private closed = false;

  constructor(
    private readonly options: {
      redis: RedisLink;
      hub: RackHub;
      leading: () => boolean;
      /** This node's rack sockets. */
      sockets: () => RackSocketRef[];
      log: Logger;
    },
  ) {}

  private get self(): string {
    return this.options.hub.self;
  }

  async attach(): Promise<void> {
    const { redis } = this.options;
    await Promise.all([
      redis.subscribe(CHANNEL, (message) => this.onMessage(message as Request | Note)),
      redis.subscribe(`${CHANNEL}-to#${this.self}`, (message) => {
        const reply = message as Reply;
        if (reply.kind === "reply") this.pending.get(reply.id)?.(reply);
      }),
    ]);
    this.timer = setInterval(() => this.tick(), RACK_BEAT_MS);
    this.timer.unref();
  }

  /** A rack connected here: ask the leader to register it (the next beat does it if none answers). */
  async hello(name: string, socket: string): Promise<void> {
    const answer = await this.request({ kind: "hello", name, socket });
    if (!answer.ok) this.options.log.info({ rack: name, why: answer.error }, "rack hello not relayed yet");
  }

  /** A rack's report, applied by the leader; its answer is the rack's ack. */
  async report(name: string, socket: string, report: RackReport): Promise<RelayAnswer> {
    const entry = { name, report };
    this.latest.set(socket, entry);
    const answer = await this.request({ kind: "report", name, socket, report });
    // A newer report sent meanwhile decides what is still unsent.
    if (this.latest.get(socket) === entry) {
      if (answer.ok) this.unsent.delete(socket);
      else this.unsent.add(socket);
    }
    return answer;
  }

  bye(name: string, socket: string): void {
    this.latest.delete(socket);
    this.unsent.delete(socket);
    this.publish({ kind: "bye", from: this.self, name });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const resolve of this.pending.values()) resolve({ kind: "reply", id: "", leads: false });
  }

  private tick(): void {
    const { hub, leading, log } = this.options;
    if (leading()) {
      // What this node's racks report now goes to its own registry.
      this.unsent.clear();
      hub.sweep().catch((error: unknown) => log.warn({ err: error }, "could not mark silent racks offline"));
      return;
    }
    const sockets = this.options.sockets();
    this.publish({ kind: "beat", from: this.self, racks: sockets });
    const here = new Set(sockets.map((s) => s.socket));
    for (const socket of this.unsent) {
      const entry = this.latest.get(socket);
      if (!entry || !here.has(socket)) {
        this.unsent.delete(socket);
        this.latest.delete(socket);
      } else void this.report(entry.name, socket, entry.report);
    }
  }

  private publish(note: Note): void {
    this.options.redis.publish(CHANNEL, note).catch(() => undefined);
  }

  /** On the leader: a follower's rack message. Everyone else answers that it does not lead. */
  private onMessage(message: Request | Note): void {
    if (message.from === this.self || this.closed) return;
    const { hub, leading, log } = this.options;
    const leads = leading();
    if (message.kind === "bye" || message.kind === "beat") {
      if (!leads) return;
      const done =
        message.kind === "bye" ? hub.bye(message.name, message.from) : hub.beat(message.from, message.racks);
      done.catch((error: unknown) =>
        log.warn({ err: error, node: message.from }, "could not apply a relayed rack presence"),
      );
      return;
    }
    if (!leads) return this.reply(message.from, { kind: "reply", id: message.id, leads: false });
    const done =
      message.kind === "hello"
        ? hub.hello(message.name, message.from, message.socket)
        : hub.report(message.name, message.from, message.socket, message.report);
    done.then(
      () => this.reply(message.from, { kind: "reply", id: message.id, leads: true }),
      (error: unknown) => {
        // A report's failure is logged by the hub (the first of an outage, then counts).
        if (message.kind === "hello")
          log.error({ err: error, rack: message.name }, "relayed rack hello failed");
        this.reply(message.from, { kind: "reply", id: message.id, leads: true, error: "internal" });
      },
    );
  }

  private reply(to: string, reply: Reply): void {
    this.options.redis.publish(`${CHANNEL}-to#${to}`, reply).catch((error: unknown) => {
      this.options.log.warn({ err: error }, "could not answer a relayed rack message");
    });
  }

  /** Sends to every node and waits for the leader's answer (see ClusterLink.request). */
  private request(body: RequestBody): Promise<RelayAnswer> {
    const id = randomBytes(8).toString("hex");
    const noLeader: RelayAnswer = { ok: false, error: "no region node leads right now; not applied" };
    return new Promise<RelayAnswer>((resolve) => {
      let expected = Number.POSITIVE_INFINITY;
      let refusals = 0;
      const finish = (answer: RelayAnswer) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(answer);
      };
      const timer = setTimeout(
        () =>
          finish({ ok: false, error: `the leader did not answer within ${RACK_RELAY_TIMEOUT_MS / 1000} s` }),
        RACK_RELAY_TIMEOUT_MS,
      );
      this.pending.set(id, (reply) => {
        if (reply.leads) return finish(reply.error ? { ok: false, error: reply.error } : { ok: true });
        if (++refusals >= expected) finish(noLeader);
      });
      if (this.closed) return finish({ ok: false, error: "the region is stopping" });
      this.options.redis.publish(CHANNEL, { ...body, id, from: this.self }).then(
        (count) => {
          expected = count - 1;
          if (refusals >= expected) finish(noLeader);
        },
        (error: unknown) => {
          if (error instanceof NotSentError)
            finish({ ok: false, error: "this region node cannot reach Redis; not applied" });
        },
      );
    });
  }
}
