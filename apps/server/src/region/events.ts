import type { Server } from "socket.io";
import { LiveState } from "./live-state";
import type {
  ClientToServerEvents,
  EventName,
  EventPayloads,
  ImageState,
  ServerToClientEvents,
  Snapshot,
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
  /** The event fence: false while this node may not announce (a cluster node that does not lead). */
  private mayEmit: () => boolean = () => true;
  readonly live = new LiveState();

  attach(io: PeopleServer): void {
    // Socket.IO's typed emit cannot express "any event of the map"; the map is enforced by `emit` below.
    this.broadcast = (event, payload) =>
      (io.to(PEOPLE_ROOM) as unknown as { emit: Broadcast }).emit(event, payload);
  }

  /**
   * On a cluster, only the leader numbers and sends state events. A node that steps down may still
   * run code of its old term for a moment (a rack report applied from memory, a coalesced image
   * event's timer, a refresh of rack counts): while `mayEmit` is false, `emit` drops what it is given
   * and pending coalesced events are dropped when due, so nothing from its stale memory reaches a
   * client, its LiveState or the other nodes. A follower's LiveState follows the leader's events
   * (`applyRemote`, `restore`), which the fence does not touch.
   */
  gate(mayEmit: () => boolean): void {
    this.mayEmit = mayEmit;
  }

  get currentSeq(): number {
    return this.seq;
  }

  /** A follower folds in an event the leader sent (its clients got it through the adapter already). */
  applyRemote<E extends EventName>(event: E, payload: EventPayloads[E] & { seq: number }): void {
    this.live.apply(event, payload);
    this.seq = Math.max(this.seq, payload.seq);
  }

  /** A follower takes the leader's state (it missed events, or follows a new leader). */
  restore(snapshot: Snapshot, seq: number): void {
    this.live.restore(snapshot, seq);
    this.seq = seq;
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
    if (!this.mayEmit()) return;
    if (event === "image") return this.image((payload as EventPayloads["image"]).image);
    if (event === "image:removed") this.forget((payload as EventPayloads["image:removed"]).id);
    // What is waiting happened before an import ended: send it first, so no client ever sees
    // "import finished" before the images it finished. Import events are rare; the limit holds.
    if (event === "import") this.flushImages();
    this.send(event, payload);
  }

  /**
   * Every `image` event, progress or state change, goes out at most once per PROGRESS_INTERVAL_MS per
   * image; what comes in between replaces what is waiting, so the latest state always goes out.
   */
  image(image: ImageState): void {
    if (!this.mayEmit()) return;
    const nowMs = Date.now();
    const entry = this.progress.get(image.id);
    if (!entry) {
      this.progress.set(image.id, { lastSent: nowMs, timer: null, image });
      this.send("image", { image });
      return;
    }
    entry.image = image;
    if (entry.timer) return;
    const wait = entry.lastSent + PROGRESS_INTERVAL_MS - nowMs;
    if (wait <= 0) {
      entry.lastSent = nowMs;
      this.send("image", { image });
      return;
    }
    entry.timer = setTimeout(() => {
      entry.timer = null;
      entry.lastSent = Date.now();
      this.send("image", { image: entry.image });
    }, wait);
  }

  /** Byte progress of a download; the same limit as every image event. */
  imageProgress(image: ImageState): void {
    this.image(image);
  }

  private flushImages(): void {
    for (const entry of this.progress.values()) {
      if (!entry.timer) continue;
      clearTimeout(entry.timer);
      entry.timer = null;
      entry.lastSent = Date.now();
      this.send("image", { image: entry.image });
    }
  }

  /** A removed image's pending event is dropped: `image:removed` is the last word on it. */
  private forget(id: string): void {
    const entry = this.progress.get(id);
    if (entry?.timer) clearTimeout(entry.timer);
    this.progress.delete(id);
  }

  private send<E extends EventName>(event: E, payload: EventPayloads[E]): void {
    // A coalesced event that falls due after the fence closed is of the old term: dropped.
    if (!this.mayEmit()) return;
    this.live.apply(event, payload);
    const sequenced = { ...payload, seq: ++this.seq };
    this.broadcast(event, sequenced);
    for (const listener of this.listeners) listener(event, sequenced);
  }

  close(): void {
    for (const entry of this.progress.values()) if (entry.timer) clearTimeout(entry.timer);
    this.progress.clear();
  }
}
