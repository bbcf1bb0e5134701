import { describe, expect, it } from "vitest";
import type { EventName, EventPayloads, ImageState } from "@bootstream/protocol";
import { applySnapshot, foldEvent, initialState } from "@bootstream/protocol/client";
import { LiveState } from "./live-state";

const image = (id: string, patch: Partial<ImageState> = {}): ImageState => ({
  id,
  os: "ubuntu",
  release: id.split("/")[1]!,
  arch: "amd64",
  title: "24.04 LTS",
  version: null,
  state: "queued",
  bytesTotal: 100,
  bytesDone: 0,
  racks: { synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null },
  error: null,
  warning: null,
  next: null,
  syncedAt: null,
  updatedAt: "2025-07-09T10:00:00.000Z",
  ...patch,
});
const rack = (name: string, online: boolean) => ({
  name,
  online,
  lastSync: null,
  imagesSynced: 0,
  imagesTotal: 1,
  error: null,
});
const you = { name: "admin", role: "admin" as const };

type Step = { [E in EventName]: [E, EventPayloads[E]] }[EventName];

describe("LiveState folds with the protocol's fold", () => {
  it("a client that takes a snapshot, then the events after it, ends where the region is", () => {
    const live = new LiveState();
    live.setImages([image("ubuntu/jammy/amd64")]);
    const steps: Step[] = [
      ["image", { image: image("ubuntu/noble/amd64", { state: "downloading", bytesDone: 40 }) }],
      ["selection", { selection: { revision: 2, items: [] }, by: "admin" }],
      ["rack", { rack: rack("r-2", true) }],
      ["rack", { rack: rack("r-1", false) }],
      [
        "settings",
        { settings: { autoImport: false, bandwidthLimit: null, importWindow: null }, by: "admin" },
      ],
      [
        "import",
        { import: { running: true, trigger: "manual", startedAt: "t", finishedAt: null, error: null } },
      ],
      ["image:removed", { id: "ubuntu/jammy/amd64" }],
      ["rack:removed", { name: "r-2" }],
      ["image", { image: image("ubuntu/noble/amd64", { state: "synced", bytesDone: 100 }) }],
    ];
    let client = applySnapshot(initialState(), live.snapshot(you), 0);
    steps.forEach(([event, payload], i) => {
      live.apply(event, payload);
      client = foldEvent(client, event, { ...payload, seq: i + 1 } as never).state;
      // After every event, a fresh snapshot and the client's fold say the same.
      const snapshot = live.snapshot(you);
      expect([...client.images.values()].sort((a, b) => a.id.localeCompare(b.id))).toEqual(snapshot.images);
      expect(client.racks).toEqual(snapshot.racks);
      expect(client.selection).toEqual(snapshot.selection);
      expect(client.settings).toEqual(snapshot.settings);
      expect(client.import).toEqual(snapshot.import);
    });
    expect(live.snapshot(you).images.map((i) => i.state)).toEqual(["synced"]);
    expect([...live.racks.keys()]).toEqual(["r-1"]);
    expect(live.racks.get("r-1")?.online).toBe(false);
  });
});
