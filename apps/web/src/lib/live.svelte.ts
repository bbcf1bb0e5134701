// The client as Svelte state.
//
// The typed client folds every event into a new immutable ClientState. Here that state is copied into
// runes once per animation frame, field by field, by reference: an `image` event changes one entry of
// a SvelteMap, so only that row of the table re-renders, whatever the number of images.

import { SvelteMap } from "svelte/reactivity";
import {
  createClient,
  initialState,
  type BootstreamClient,
  type ClientChange,
  type ClientState,
  type ClientStatus,
} from "@bootstream/protocol/client";
import type {
  Catalogue,
  CommandName,
  CommandPayload,
  CommandResults,
  ImageState,
  PresenceUser,
} from "@bootstream/protocol";
import {
  RateTracker,
  describeWindow,
  formatBandwidth,
  importEndNote,
  isUpdating,
  statusNews,
  statusText,
} from "@bootstream/images/present";

const AUDIT = 200;

export type CatalogueStatus = "idle" | "loading" | "ready" | "error";

export class Live {
  status = $state<ClientStatus>("closed");
  error = $state<string | null>(null);
  ready = $state(false);

  readonly images = new SvelteMap<string, ImageState>();
  /** Bytes per second by image id (null: not enough samples yet). */
  readonly rates = new SvelteMap<string, number | null>();
  order = $state.raw<readonly string[]>([]);
  selection = $state.raw<ClientState["selection"]>(initialState().selection);
  selectionBy = $state<string | null>(null);
  settings = $state.raw<ClientState["settings"]>(initialState().settings);
  settingsBy = $state<string | null>(null);
  source = $state.raw<ClientState["source"]>(initialState().source);
  racks = $state.raw<ClientState["racks"]>([]);
  importState = $state.raw<ClientState["import"]>(initialState().import);
  /** The region store's verification (`store:verify`). */
  verify = $state.raw<ClientState["verify"]>(initialState().verify);
  you = $state.raw<PresenceUser | null>(null);
  users = $state.raw<readonly PresenceUser[]>([]);
  audit = $state.raw<ClientState["audit"]>([]);
  /** The connected region node's health (the banner when degraded). */
  health = $state.raw<ClientState["health"]>(null);
  catalogue = $state.raw<Catalogue | null>(null);
  catalogueStatus = $state<CatalogueStatus>("idle");
  catalogueError = $state<string | null>(null);
  /** Polite screen-reader announcements of state changes (not of every percent). */
  announcement = $state("");
  /** A clock for "5 min ago" and stalled downloads; ticks every second. */
  now = $state(Date.now());

  readonly isAdmin = $derived(this.you?.role === "admin");
  readonly canEdit = $derived(this.isAdmin && this.status === "connected");

  #client: BootstreamClient | null = null;
  #last: ClientState = initialState();
  #frame: number | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #ticker: ReturnType<typeof setInterval> | null = null;
  #rates = new RateTracker();
  #notes: string[] = [];
  #catalogueSeq = 0;

  /** Connects with `token` (closing any previous connection). Resolves once connected or refused. */
  start(token: string): Promise<void> {
    this.stop();
    const client = createClient({
      url: window.location.origin,
      token,
      audit: AUDIT,
      io: { transports: ["websocket", "polling"] },
    });
    this.#client = client;
    client.subscribe((change) => this.#onChange(client, change));
    this.#ticker = setInterval(() => {
      this.now = Date.now();
      this.#updateRates();
    }, 1000);
    return client.connect().then(
      () => undefined,
      () => undefined, // the status and error say what happened
    );
  }

  stop(): void {
    this.#client?.close();
    this.#client = null;
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
    this.#cancelFlush();
    this.#last = initialState();
    this.images.clear();
    this.rates.clear();
    this.#rates = new RateTracker();
    this.#flushFields(this.#last);
    this.status = "closed";
    this.error = null;
    this.catalogue = null;
    this.catalogueStatus = "idle";
  }

  /** Runs a command; what its answer tells (a saved selection, a conflict's newer one) shows at once. */
  async command<N extends CommandName>(name: N, payload: CommandPayload<N>): Promise<CommandResults[N]> {
    const client = this.#client;
    if (!client) throw new Error("not connected");
    try {
      return await client.command(name, payload);
    } finally {
      if (client === this.#client) {
        this.#cancelFlush();
        this.#flush();
      }
    }
  }

  /** (Re)loads what can be selected; a source change or a reconnect calls it. */
  /** The source (url, last read, signed) the catalogue was last asked for. */
  #catalogueSource = "";

  async loadCatalogue(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    const seq = ++this.#catalogueSeq;
    this.catalogueStatus = "loading";
    try {
      const { catalogue } = await client.command("catalogue:get", {});
      if (seq !== this.#catalogueSeq) return;
      this.catalogue = catalogue ?? null;
      this.catalogueStatus = "ready";
      this.catalogueError = null;
    } catch (error) {
      if (seq !== this.#catalogueSeq) return;
      this.catalogueStatus = "error";
      this.catalogueError = error instanceof Error ? error.message : String(error);
    }
  }

  #onChange(client: BootstreamClient, change: ClientChange): void {
    if (client !== this.#client) return;
    if (change === "status") {
      this.status = client.status;
      this.error = client.error;
      if (client.status === "reconnecting") this.#notes.push("Connection lost: reconnecting…");
      if (client.status === "refused") this.#notes.push("The region refused the token.");
    }
    // Only a source that changed or was read again can offer something else: a `source` event that
    // only repeats a failure must not ask again (each ask reads the source while none is cached).
    if (change === "snapshot" || change === "source") {
      const { url, lastFetch, keyringSet } = client.state.source;
      const key = `${url}\n${lastFetch ?? ""}\n${keyringSet}`;
      if (change === "snapshot" || key !== this.#catalogueSource) void this.loadCatalogue();
      this.#catalogueSource = key;
    }
    if (change === "catalogue" && client.state.catalogue) {
      // A source:update answer carries the new catalogue.
      this.catalogue = client.state.catalogue;
      this.catalogueStatus = "ready";
      this.#catalogueSeq++;
    }
    this.#schedule();
  }

  /** Batches changes to one DOM update per frame (a timer when the tab is hidden: no frames there). */
  #schedule(): void {
    if (this.#frame !== null || this.#timer !== null) return;
    if (typeof document !== "undefined" && document.visibilityState === "visible") {
      this.#frame = requestAnimationFrame(() => {
        this.#frame = null;
        this.#flush();
      });
    } else {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#flush();
      }, 250);
    }
  }

  #cancelFlush(): void {
    if (this.#frame !== null) cancelAnimationFrame(this.#frame);
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#frame = null;
    this.#timer = null;
  }

  #flush(): void {
    const client = this.#client;
    if (client) {
      const next = client.state;
      const prev = this.#last;
      this.#last = next;
      if (next.images !== prev.images) this.#syncImages(prev, next);
      if (next.import !== prev.import && prev.ready) this.#noteImport(prev, next);
      if (
        next.selection !== prev.selection &&
        prev.ready &&
        next.selectionBy &&
        next.selectionBy !== next.you?.name
      )
        this.#notes.push(`${next.selectionBy} saved the image selection.`);
      if (next.settings !== prev.settings && prev.ready && next.settingsBy)
        this.#notes.push(settingsNote(next.settingsBy, prev.settings, next.settings));
      this.#flushFields(next);
    }
    if (this.#notes.length) {
      const text = this.#notes.length > 4 ? `${this.#notes.length} updates.` : this.#notes.join(" ");
      this.#notes = [];
      // Re-announcing the same text needs a change of content.
      this.announcement = this.announcement === text ? `${text}\u00a0` : text;
    }
  }

  #flushFields(s: ClientState): void {
    this.ready = s.ready;
    this.order = s.order;
    this.selection = s.selection;
    this.selectionBy = s.selectionBy;
    this.settings = s.settings;
    this.settingsBy = s.settingsBy;
    this.source = s.source;
    this.racks = s.racks;
    this.importState = s.import;
    this.verify = s.verify;
    this.you = s.you;
    this.users = s.users;
    this.audit = s.audit;
    this.health = s.health;
  }

  #syncImages(prev: ClientState, next: ClientState): void {
    const t = performance.now();
    const changed: string[] = [];
    for (const [id, image] of next.images) {
      const before = this.images.get(id);
      if (before === image) continue;
      this.images.set(id, image);
      const bytes =
        image.state === "downloading"
          ? image.bytesDone
          : isUpdating(image)
            ? (image.next?.bytesDone ?? 0)
            : null;
      if (bytes !== null) {
        this.#rates.sample(id, bytes, t);
        this.rates.set(id, this.#rates.rate(id, t));
      } else if (this.rates.has(id)) {
        this.#rates.forget(id);
        this.rates.delete(id);
      }
      if (prev.ready && before && statusNews(before, image)) changed.push(id);
    }
    if (next.images.size !== this.images.size) {
      for (const id of [...this.images.keys()]) {
        if (next.images.has(id)) continue;
        this.images.delete(id);
        this.rates.delete(id);
        this.#rates.forget(id);
      }
    }
    if (changed.length > 3) {
      this.#notes.push(`${changed.length} images changed status.`);
    } else {
      for (const id of changed) {
        const image = next.images.get(id);
        if (image && image.state !== "downloading") this.#notes.push(`${id}: ${statusText(image)}.`);
      }
    }
  }

  #updateRates(): void {
    const t = performance.now();
    for (const id of this.rates.keys()) this.rates.set(id, this.#rates.rate(id, t));
  }

  #noteImport(prev: ClientState, next: ClientState): void {
    if (!prev.import.running && next.import.running) this.#notes.push("Import started.");
    if (prev.import.running && !next.import.running) this.#notes.push(importEndNote(next.import.error));
  }
}

/** What a `settings` event changed, in a sentence for the live region. */
function settingsNote(by: string, before: ClientState["settings"], after: ClientState["settings"]): string {
  const said: string[] = [];
  if (before.autoImport !== after.autoImport)
    said.push(`turned hourly sync ${after.autoImport ? "on" : "off"}`);
  if (before.bandwidthLimit !== after.bandwidthLimit)
    said.push(`set the download cap to ${formatBandwidth(after.bandwidthLimit)}`);
  if (JSON.stringify(before.importWindow) !== JSON.stringify(after.importWindow))
    said.push(`set the import window to ${describeWindow(after.importWindow)}`);
  return `${by} ${said.length ? said.join(" and ") : "saved the settings"}.`;
}
