import { RACK_NAMESPACE, type PresenceUser } from "@bootstream/protocol";
import { rackTokenRoom } from "./racks/rack-namespace";
import { PEOPLE_ROOM, type EventBus, type PeopleServer } from "./events";

const tokenRoom = (name: string) => `token:${name}`;

/** Who is connected: presence for the dashboard, and the sockets to cut when a token is revoked. */
export class Sessions {
  private io: PeopleServer | null = null;
  private presenceTimer: NodeJS.Timeout | null = null;
  private follower: { isLeader: () => boolean; tellLeader: () => void } | null = null;

  constructor(private readonly bus: EventBus) {}

  /** On a cluster only the leader announces presence (it numbers every event); followers nudge it. */
  follow(isLeader: () => boolean, tellLeader: () => void): void {
    this.follower = { isLeader, tellLeader };
  }

  attach(io: PeopleServer): void {
    this.io = io;
  }

  roomOf(user: PresenceUser): string {
    return tokenRoom(user.name);
  }

  /** Connections come and go in bursts (a wall of screens reconnecting): one `presence` per burst. */
  changed(): void {
    if (this.follower && !this.follower.isLeader()) return this.follower.tellLeader();
    if (this.presenceTimer) return;
    this.presenceTimer = setTimeout(() => {
      this.presenceTimer = null;
      this.users().then(
        (users) => this.bus.emit("presence", { users }),
        () => undefined, // presence is best effort: the next connect or disconnect tries again
      );
    }, 100);
  }

  async users(): Promise<PresenceUser[]> {
    if (!this.io) return [];
    const sockets = await this.io.in("people").fetchSockets();
    const seen = new Map<string, PresenceUser>();
    for (const socket of sockets) {
      const user = (socket.data as { user?: PresenceUser }).user;
      if (user) seen.set(user.name, user);
    }
    return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Sends every client connected to this node a fresh snapshot (a node that just took over the lead,
   * a follower that caught up with the leader). Each node does its own: no Redis round trip.
   */
  async resnapshot(): Promise<void> {
    if (!this.io) return;
    for (const socket of this.io.sockets.sockets.values()) {
      if (!socket.rooms.has(PEOPLE_ROOM)) continue;
      const user = (socket.data as { user?: PresenceUser }).user;
      if (user) socket.emit("snapshot", { ...this.bus.live.snapshot(user), seq: this.bus.currentSeq });
    }
  }

  /** Cuts every socket of the token: people's, and a rack's registered with its rack token. */
  disconnectToken(name: string): void {
    this.io?.in(tokenRoom(name)).disconnectSockets(true);
    this.io?.of(RACK_NAMESPACE).in(rackTokenRoom(name)).disconnectSockets(true);
  }

  close(): void {
    if (this.presenceTimer) clearTimeout(this.presenceTimer);
  }
}
