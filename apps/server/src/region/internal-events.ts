import type { ImageState, Manifest } from "@bootstream/protocol";
import type { Logger } from "../log";
import type { ImageRow } from "./db/entities";

/**
 * What the region's parts tell each other, by name (as Immich's server events): who emits and who
 * listens is wired once in region.ts, and no part holds a reference to another just to call it back.
 */
export type InternalEventMap = {
  /** Image rows committed: a state, version or membership changed (racks rebuild their manifest). */
  "image.committed": { changed: readonly string[]; removed: readonly string[] };
  /** An import run ended, recorded (racks are told to sync now). */
  "import.finished": { error: string | null };
  /** A new manifest generation (pushed to every rack). */
  "manifest.changed": { manifest: Manifest };
  /** Every online rack holds the current manifest: files only old generations needed may go. */
  "racks.caughtUp": Record<string, never>;
  /** Files went out of service (found corrupt) or back in (repaired): racks rebuild their manifest. */
  "store.changed": Record<string, never>;
};

/** Questions one part answers for another (one answerer each; a default until it is wired). */
export type InternalQueryMap = {
  /** How many online racks hold an image, and how many pull it now. */
  "racks.counts": { args: [image: ImageRow]; result: ImageState["racks"] };
  /** Files racks may still pull, after bringing the manifest up to date (garbage collection keeps them). */
  "racks.pinned": { args: []; result: Promise<ReadonlySet<string>> };
  /** Files out of service (found corrupt by `store:verify`): no manifest offers an image that needs one. */
  "store.unservable": { args: []; result: ReadonlySet<string> };
};

export type InternalEventName = keyof InternalEventMap;
type Handler<E extends InternalEventName> = (payload: InternalEventMap[E]) => void | Promise<void>;
type Answer<Q extends keyof InternalQueryMap> = (
  ...args: InternalQueryMap[Q]["args"]
) => InternalQueryMap[Q]["result"];

type Subscription<E extends InternalEventName> = {
  handler: Handler<E>;
  /** Ordered handlers run one call at a time, in emit order; the others are called at once. */
  ordered: boolean;
  tail: Promise<void>;
};

const DEFAULTS: { [Q in keyof InternalQueryMap]: Answer<Q> } = {
  "racks.counts": () => ({ synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null }),
  "racks.pinned": async () => new Set<string>(),
  "store.unservable": () => new Set<string>(),
};

export class InternalEvents {
  private readonly subscriptions = new Map<InternalEventName, Subscription<never>[]>();
  private readonly answers = new Map<keyof InternalQueryMap, unknown>();
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly log: Logger) {}

  on<E extends InternalEventName>(
    event: E,
    handler: Handler<E>,
    options: { ordered?: boolean } = {},
  ): () => void {
    const list = (this.subscriptions.get(event) ?? []) as Subscription<E>[];
    const subscription: Subscription<E> = {
      handler,
      ordered: options.ordered ?? false,
      tail: Promise.resolve(),
    };
    list.push(subscription);
    this.subscriptions.set(event, list as Subscription<never>[]);
    return () => list.splice(list.indexOf(subscription), 1);
  }

  /** Calls every handler; a handler's failure is logged and never reaches the emitter or other handlers. */
  emit<E extends InternalEventName>(event: E, payload: InternalEventMap[E]): void {
    for (const subscription of [...((this.subscriptions.get(event) ?? []) as Subscription<E>[])]) {
      const run = () => Promise.resolve().then(() => subscription.handler(payload));
      const done = (subscription.ordered ? subscription.tail.then(run) : run()).catch((error: unknown) =>
        this.log.error({ err: error, event }, "internal event handler failed"),
      );
      if (subscription.ordered) subscription.tail = done;
      this.pending.add(done);
      void done.finally(() => this.pending.delete(done));
    }
  }

  answer<Q extends keyof InternalQueryMap>(query: Q, answer: Answer<Q>): void {
    this.answers.set(query, answer);
  }

  ask<Q extends keyof InternalQueryMap>(
    query: Q,
    ...args: InternalQueryMap[Q]["args"]
  ): InternalQueryMap[Q]["result"] {
    const answer = (this.answers.get(query) ?? DEFAULTS[query]) as Answer<Q>;
    return answer(...args);
  }

  /** Resolves when every handler started so far has finished (shutdown, tests). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
