import type { Server } from "socket.io";
import { LiveState } from "./live-state";
import type {
  ClientToServerEvents,
  EventName,
  EventPayloads,
  ImageState,
  ServerToClientEvents,
} from "@bootstream/protocol";

export type PeopleServer = Server<ClientToServerEvents, ServerToClientEvents>;
export const PEOPLE_ROOM = "people";
/** The contract allows at most 4 `image` events a second per image. */
export const PROGRESS_INTERVAL_MS = 250;

type Listener = <E extends EventName>(event: E, payload: EventPayloads[E] & { seq: number }) => void;
type Broadcast = (event: string, payload: unknown) => void;

/**
 * The one way state changes leave the region: numbers every event with `seq`, coalesces progress,
 * and broadcasts once (Socket.IO encodes a broadcast once for all recipients).
 */
export class EventBus {
  private seq = 0;
  private readonly listeners: Listener[] = [];
  private readonly progress = new Map<
    string,
    { lastSent: number; timer: NodeJS.Timeout | null; image: ImageState }
  >();
  private broadcast: Broadcast = () => undefined;
  private replicate: Broadcast = () => undefined;
  readonly live = new LiveState();

  attach(io: PeopleServer): void {
    // Socket.IO's typed emit cannot express "any event of the map"; the map is enforced by `emit` below.
    this.broadcast = (event, payload) =>
      (io.to(PEOPLE_ROOM) as unknown as { emit: Broadcast }).emit(event, payload);
  }

  get currentSeq(): number {
    return this.seq;
  }

  /** On a cluster, the leader's events also go to the other nodes' live state. */
  setReplicator(replicate: (event: EventName, payload: unknown) => void): void {
    this.replicate = replicate as Broadcast;
  }

  /** A follower folds in an event the leader sent (its clients got it through the adapter already). */
  applyRemote<E extends EventName>(event: E, payload: EventPayloads[E] & { seq: number }): void {
    this.live.apply(event, payload);
    this.seq = Math.max(this.seq, payload.seq);
  }

  /** Sets the live state without telling anyone: used once at start, before any client connects. */
  seed(apply: (live: LiveState) => void): void {
    apply(this.live);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.push(listener);
    return () => this.listeners.splice(this.listeners.indexOf(listener), 1);
  }

  emit<E extends EventName>(event: E, payload: EventPayloads[E]): void {
    if (event === "image") this.settleProgress((payload as EventPayloads["image"]).image.id);
    if (event === "image:removed") this.forgetProgress((payload as EventPayloads["image:removed"]).id);
    this.send(event, payload);
  }

  /** Byte progress of a download: sent at most every PROGRESS_INTERVAL_MS per image, the latest value wins. */
  imageProgress(image: ImageState): void {
    const entry = this.progress.get(image.id);
    const nowMs = Date.now();
    if (!entry) {
      this.progress.set(image.id, { lastSent: nowMs, timer: null, image });
      this.send("image", { image });
      return;
    }
    entry.image = image;
    if (entry.timer) return;
    const wait = Math.max(0, entry.lastSent + PROGRESS_INTERVAL_MS - nowMs);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      entry.lastSent = Date.now();
      this.send("image", { image: entry.image });
    }, wait);
  }

  /** A state change supersedes progress still waiting to go out, and counts towards the rate. */
  private settleProgress(id: string): void {
    const entry = this.progress.get(id);
    if (!entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.lastSent = Date.now();
  }

  private forgetProgress(id: string): void {
    this.settleProgress(id);
    this.progress.delete(id);
  }

  private send<E extends EventName>(event: E, payload: EventPayloads[E]): void {
    this.live.apply(event, payload);
    const sequenced = { ...payload, seq: ++this.seq };
    this.broadcast(event, sequenced);
    this.replicate(event, sequenced);
    for (const listener of this.listeners) listener(event, sequenced);
  }

  close(): void {
    for (const entry of this.progress.values()) if (entry.timer) clearTimeout(entry.timer);
    this.progress.clear();
  }
}
