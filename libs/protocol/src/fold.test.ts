import { describe, expect, it } from "vitest";
import { IDLE_VERIFY, type ImageState, type Snapshot } from "./state";
import {
  AUDIT_LIMIT,
  applySnapshot,
  compareImages,
  foldEvent,
  imageList,
  initialState,
  withAuditEntries,
  withSelection,
  type ClientState,
} from "./fold";

function image(id: string, patch: Partial<ImageState> = {}): ImageState {
  const [os = "ubuntu", release = "noble", arch = "amd64"] = id.split("/");
  const titles: Record<string, string> = {
    noble: "24.04 LTS",
    jammy: "22.04 LTS",
    focal: "20.04 LTS",
    centos70: "CentOS 7",
  };
  return {
    id,
    os,
    release,
    arch,
    title: titles[release] ?? release,
    version: "20240101",
    state: "queued",
    bytesTotal: 1000,
    bytesDone: 0,
    racks: { synced: 0, total: 0, syncing: 0, offline: 0, failed: 0, error: null },
    error: null,
    warning: null,
    next: null,
    syncedAt: null,
    updatedAt: "2024-01-01T00:00:00.000Z",
    ...patch,
  };
}

function snapshot(patch: Partial<Snapshot> = {}): Snapshot {
  return {
    images: [image("ubuntu/jammy/amd64"), image("centos/centos70/amd64"), image("ubuntu/noble/amd64")],
    selection: { revision: 3, items: [{ os: "ubuntu", release: "noble", arches: ["amd64"] }] },
    settings: { autoImport: true, bandwidthLimit: null, importWindow: null },
    source: { url: "http://mirror/", keyringSet: false, lastFetch: null, error: null },
    racks: [],
    import: { running: false, trigger: null, startedAt: null, finishedAt: null, error: null },
    verify: IDLE_VERIFY,
    you: { name: "admin", role: "admin" },
    ...patch,
  };
}

function ready(seq = 10): ClientState {
  return foldEvent(initialState(), "snapshot", { ...snapshot(), seq }).state;
}

describe("foldEvent", () => {
  it("takes a node's health from the snapshot and from unnumbered health events, without a gap", () => {
    const degraded = {
      status: "degraded",
      role: "single",
      checks: { database: "failing", redis: "n/a" },
      errors: { database: "writes failing: SQLITE_FULL" },
    } as const;
    const ok = { ...degraded, status: "ok", checks: { database: "ok", redis: "n/a" }, errors: {} } as const;
    expect(initialState().health).toBeNull();
    const withSnapshot = foldEvent(initialState(), "snapshot", {
      ...snapshot({ health: ok }),
      seq: 10,
    }).state;
    expect(withSnapshot.health).toEqual(ok);
    // Health events carry no seq (they are per node): applied, seq kept, no gap.
    const result = foldEvent(withSnapshot, "health", { health: degraded } as never);
    expect(result).toMatchObject({ gap: false, changed: true });
    expect(result.state.health).toEqual(degraded);
    expect(result.state.seq).toBe(10);
    // A snapshot from an older region without health keeps what we knew.
    expect(foldEvent(result.state, "snapshot", { ...snapshot(), seq: 11 }).state.health).toEqual(degraded);
  });

  it("starts empty and takes everything from a snapshot", () => {
    const state = ready(10);
    expect(state.ready).toBe(true);
    expect(state.seq).toBe(10);
    expect(state.you).toEqual({ name: "admin", role: "admin" });
    expect(state.users).toEqual([{ name: "admin", role: "admin" }]);
    expect(state.settings.autoImport).toBe(true);
    expect(state.order).toEqual(["ubuntu/noble/amd64", "ubuntu/jammy/amd64", "centos/centos70/amd64"]);
    expect(imageList(state).map((i) => i.id)).toEqual(state.order);
  });

  it("ignores events before the first snapshot", () => {
    const result = foldEvent(initialState(), "image", { image: image("ubuntu/noble/amd64"), seq: 1 });
    expect(result.changed).toBe(false);
    expect(result.gap).toBe(false);
    expect(result.state.images.size).toBe(0);
  });

  it("updates one image and keeps the identity of everything else", () => {
    const state = ready(10);
    const jammy = state.images.get("ubuntu/jammy/amd64");
    const updated = image("ubuntu/noble/amd64", { state: "downloading", bytesDone: 420 });
    const result = foldEvent(state, "image", { image: updated, seq: 11 });
    expect(result).toMatchObject({ gap: false, changed: true });
    expect(result.state.seq).toBe(11);
    expect(result.state.images.get("ubuntu/noble/amd64")).toBe(updated);
    expect(result.state.images.get("ubuntu/jammy/amd64")).toBe(jammy);
    expect(result.state.order).toBe(state.order);
    expect(result.state.selection).toBe(state.selection);
    // The input state is not touched.
    expect(state.images.get("ubuntu/noble/amd64")?.bytesDone).toBe(0);
  });

  it("inserts new images in display order and removes them", () => {
    let state = ready(10);
    state = foldEvent(state, "image", { image: image("ubuntu/noble/arm64"), seq: 11 }).state;
    expect(state.order).toEqual([
      "ubuntu/noble/amd64",
      "ubuntu/noble/arm64",
      "ubuntu/jammy/amd64",
      "centos/centos70/amd64",
    ]);
    state = foldEvent(state, "image:removed", { id: "ubuntu/jammy/amd64", seq: 12 }).state;
    expect(state.order).toEqual(["ubuntu/noble/amd64", "ubuntu/noble/arm64", "centos/centos70/amd64"]);
    expect(state.images.has("ubuntu/jammy/amd64")).toBe(false);
  });

  it("ignores duplicates (seq at or below the last one)", () => {
    const state = ready(10);
    for (const seq of [10, 9, 1]) {
      const result = foldEvent(state, "settings", {
        settings: { autoImport: false, bandwidthLimit: null, importWindow: null },
        by: "x",
        seq,
      });
      expect(result).toEqual({ state, gap: false, changed: false });
    }
  });

  it("reports a gap, still applies the event and carries on from its seq", () => {
    const state = ready(10);
    const gapped = foldEvent(state, "settings", {
      settings: { autoImport: false, bandwidthLimit: null, importWindow: null },
      by: "bob",
      seq: 13,
    });
    expect(gapped.gap).toBe(true);
    expect(gapped.changed).toBe(true);
    expect(gapped.state.settings.autoImport).toBe(false);
    expect(gapped.state.settingsBy).toBe("bob");
    expect(gapped.state.seq).toBe(13);
    const next = foldEvent(gapped.state, "presence", { users: [], seq: 14 });
    expect(next.gap).toBe(false);
  });

  it("takes a later snapshot whatever its seq (a restarted region starts again)", () => {
    const state = ready(500);
    const result = foldEvent(state, "snapshot", { ...snapshot({ images: [] }), seq: 1 });
    expect(result.state.seq).toBe(1);
    expect(result.state.images.size).toBe(0);
    expect(result.state.order).toEqual([]);
  });

  it("folds selection, source, import, rack and presence events", () => {
    let state = ready(1);
    const selection = { revision: 4, items: [] };
    state = foldEvent(state, "selection", { selection, by: "alice", seq: 2 }).state;
    expect(state.selection).toBe(selection);
    expect(state.selectionBy).toBe("alice");
    const source = { url: "http://other/", keyringSet: true, lastFetch: null, error: "boom" };
    state = foldEvent(state, "source", { source, seq: 3 }).state;
    expect(state.source).toBe(source);
    const running = {
      running: true,
      trigger: "manual" as const,
      startedAt: "t",
      finishedAt: null,
      error: null,
    };
    state = foldEvent(state, "import", { import: running, seq: 4 }).state;
    expect(state.import).toBe(running);
    const rack = (name: string, online = true) => ({
      name,
      online,
      lastSync: null,
      imagesSynced: 0,
      imagesTotal: 3,
      error: null,
    });
    state = foldEvent(state, "rack", { rack: rack("rack-b"), seq: 5 }).state;
    state = foldEvent(state, "rack", { rack: rack("rack-a"), seq: 6 }).state;
    state = foldEvent(state, "rack", { rack: rack("rack-b", false), seq: 7 }).state;
    expect(state.racks.map((r) => [r.name, r.online])).toEqual([
      ["rack-a", true],
      ["rack-b", false],
    ]);
    state = foldEvent(state, "rack:removed", { name: "rack-a", seq: 8 }).state;
    expect(state.racks.map((r) => r.name)).toEqual(["rack-b"]);
    const users = [{ name: "bob", role: "viewer" as const }];
    state = foldEvent(state, "presence", { users, seq: 9 }).state;
    expect(state.users).toBe(users);
  });

  it("keeps the audit feed newest first, without duplicates, bounded", () => {
    let state = ready(0);
    for (let i = 1; i <= AUDIT_LIMIT + 20; i++) {
      const at = new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString();
      state = foldEvent(state, "audit", {
        entry: { at, by: "a", action: "x", detail: String(i) },
        seq: i,
      }).state;
    }
    expect(state.audit).toHaveLength(AUDIT_LIMIT);
    expect(state.audit[0]?.detail).toBe(String(AUDIT_LIMIT + 20));
    const again = withAuditEntries(state, [state.audit[5]!, state.audit[0]!]);
    expect(again.audit).toEqual(state.audit);
  });
});

describe("helpers", () => {
  it("applySnapshot without a seq keeps the last one", () => {
    const state = foldEvent(ready(10), "presence", { users: [], seq: 11 }).state;
    const replaced = applySnapshot(
      state,
      snapshot({ settings: { autoImport: false, bandwidthLimit: null, importWindow: null } }),
    );
    expect(replaced.seq).toBe(11);
    expect(replaced.settings.autoImport).toBe(false);
  });

  it("withSelection only takes newer revisions", () => {
    const state = ready(1);
    expect(withSelection(state, { revision: 2, items: [] })).toBe(state);
    const next = withSelection(state, { revision: 5, items: [] }, "bob");
    expect(next.selection.revision).toBe(5);
    expect(next.selectionBy).toBe("bob");
  });

  it("sorts Ubuntu first, newest release first, then by architecture", () => {
    const ids = ["centos/centos70/amd64", "ubuntu/focal/arm64", "ubuntu/noble/arm64", "ubuntu/noble/amd64"];
    const sorted = ids.map((id) => image(id)).sort(compareImages);
    expect(sorted.map((i) => i.id)).toEqual([
      "ubuntu/noble/amd64",
      "ubuntu/noble/arm64",
      "ubuntu/focal/arm64",
      "centos/centos70/amd64",
    ]);
  });
});
