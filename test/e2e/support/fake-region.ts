// A scripted stand-in for the region, for what a real region cannot do on demand: 500 images with
// 20 progress events a second (the dashboard's scale test), and screenshots of chosen states.
// It serves the built dashboard and speaks the contract's Socket.IO protocol (a subset of commands).
// Tests of behaviour go against the real region (test/helpers/region.ts); this is for load and looks.

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Server, type Socket } from "socket.io";
import type {
  AuditEntry,
  Catalogue,
  ClientToServerEvents,
  EventName,
  EventPayloads,
  ImageState,
  PresenceUser,
  RackState,
  ServerToClientEvents,
  Snapshot,
} from "@bootstream/protocol";

const DIST = fileURLToPath(new URL("../../../apps/web/dist/", import.meta.url));

export const FAKE_ADMIN = "fake-admin-token";
export const FAKE_VIEWER = "fake-viewer-token";

export type FakeRegionOptions = {
  /** How many images the snapshot holds (default 500). */
  images?: number;
  /** Progress events a second across all images while `running` (default 20). */
  updatesPerSecond?: number;
  /** How many images download at once (default 8). */
  downloading?: number;
  racks?: number;
};

export type FakeRegion = {
  url: string;
  /** Progress events sent so far. */
  readonly sent: number;
  state: Omit<Snapshot, "you">;
  emit<E extends EventName>(event: E, payload: EventPayloads[E]): void;
  /** Pauses or resumes the progress ticker. */
  setRunning(running: boolean): void;
  stop(): Promise<void>;
};

const RELEASES = [
  ["noble", "24.04 LTS", true, "2029-05-31"],
  ["jammy", "22.04 LTS", true, "2027-06-01"],
  ["focal", "20.04 LTS", true, "2025-05-29"],
  ["plucky", "25.04", false, "2026-01-15"],
  ["oracular", "24.10", false, "2025-07-10"],
] as const;
const ARCHES = ["amd64", "arm64", "ppc64el", "s390x", "riscv64"];

export const FAKE_CATALOGUE: Catalogue = {
  ubuntu: {
    releases: RELEASES.map(([release, title, lts, eol]) => ({ release, title, lts, eol })),
    arches: ARCHES.slice(0, 4),
  },
  other: [
    { os: "centos", release: "centos70", title: "CentOS 7", arches: ["amd64"] },
    { os: "centos", release: "centos80", title: "CentOS 8", arches: ["amd64", "arm64"] },
  ],
};

function makeImages(n: number): ImageState[] {
  const images: ImageState[] = [];
  const now = new Date().toISOString();
  for (let i = 0; images.length < n; i++) {
    const [release, title] = RELEASES[i % RELEASES.length]!;
    const arch = ARCHES[Math.floor(i / RELEASES.length) % ARCHES.length]!;
    const round = Math.floor(i / (RELEASES.length * ARCHES.length));
    const os = round === 0 ? "ubuntu" : `custom${round}`;
    const total = 300_000_000 + ((i * 7919) % 900) * 1_000_000;
    // Half synced everywhere, a tenth waiting for racks, the rest queued; a few downloading.
    const kind = i % 10 >= 7 && i % 10 <= 8 && i >= 40 ? 5 : i % 10;
    images.push({
      id: `${os}/${release}/${arch}`,
      os,
      release,
      arch,
      title: round === 0 ? title : `${title} build ${round}`,
      version: "20250709",
      state: kind < 5 ? "rack-synced" : kind < 7 ? "queued" : kind < 9 ? "downloading" : "synced",
      bytesTotal: total,
      bytesDone: kind < 5 || kind === 9 ? total : kind < 7 ? 0 : Math.floor(total * ((i % 7) / 10)),
      racks: { synced: kind < 5 ? 2 : 0, total: 2 },
      error: null,
      updatedAt: now,
    });
  }
  return images;
}

export async function startFakeRegion(options: FakeRegionOptions = {}): Promise<FakeRegion> {
  const count = options.images ?? 500;
  const ups = options.updatesPerSecond ?? 20;
  const images = makeImages(count);
  const racks: RackState[] = Array.from({ length: options.racks ?? 2 }, (_, i) => ({
    name: `rack-${i + 1}`,
    online: i === 0,
    lastSync: new Date(Date.now() - (i + 1) * 240_000).toISOString(),
    imagesSynced: Math.floor(count / 2),
    imagesTotal: count,
    error: null,
  }));
  const state: FakeRegion["state"] = {
    images,
    selection: {
      revision: 1,
      items: [{ os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] }],
    },
    settings: { autoImport: true },
    source: {
      url: "http://mirror.lab/ephemeral-v3/stable/",
      keyringSet: false,
      lastFetch: new Date().toISOString(),
      error: null,
    },
    racks,
    import: {
      running: true,
      trigger: "selection",
      startedAt: new Date().toISOString(),
      finishedAt: null,
      error: null,
    },
  };
  const audit: AuditEntry[] = [
    {
      at: new Date().toISOString(),
      by: "alice",
      action: "selection:save",
      detail: "revision 1: ubuntu/noble [amd64, arm64]",
    },
  ];
  const users = new Map<string, PresenceUser>();
  let seq = 0;
  let sent = 0;

  const http = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const file =
      url.pathname.startsWith("/assets/") && !url.pathname.includes("..") ? url.pathname : "/index.html";
    try {
      const body = await readFile(path.join(DIST, file));
      const type = file.endsWith(".js")
        ? "text/javascript"
        : file.endsWith(".css")
          ? "text/css"
          : "text/html";
      res.writeHead(200, { "content-type": type }).end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(http);

  function emit<E extends EventName>(event: E, payload: EventPayloads[E]): void {
    (io.emit as (ev: string, p: unknown) => void)(event, { ...payload, seq: ++seq });
  }

  io.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: string }).token;
    if (token === FAKE_ADMIN) socket.data = { name: "admin", role: "admin" };
    else if (token === FAKE_VIEWER) socket.data = { name: "wall", role: "viewer" };
    else return next(new Error("unauthorized"));
    next();
  });

  io.on("connection", (socket: Socket<ClientToServerEvents, ServerToClientEvents>) => {
    const you = socket.data as PresenceUser;
    users.set(socket.id, you);
    socket.emit("snapshot", { ...state, you, seq });
    emit("presence", { users: [...users.values()] });
    socket.on("disconnect", () => {
      users.delete(socket.id);
      emit("presence", { users: [...users.values()] });
    });
    socket.on("state:get", (_p, ack) => ack({ ok: true, snapshot: { ...state, you } }));
    socket.on("catalogue:get", (_p, ack) => ack({ ok: true, catalogue: FAKE_CATALOGUE }));
    socket.on("audit:list", (_p, ack) => ack({ ok: true, entries: audit }));
    socket.on("settings:update", (p, ack) => {
      if (you.role !== "admin")
        return ack({ ok: false, error: { code: "forbidden", message: "viewers watch only" } });
      state.settings = { autoImport: p.autoImport };
      emit("settings", { settings: state.settings, by: you.name });
      ack({ ok: true, settings: state.settings });
    });
    socket.on("selection:save", (p, ack) => {
      if (you.role !== "admin")
        return ack({ ok: false, error: { code: "forbidden", message: "viewers watch only" } });
      if (p.revision !== state.selection.revision) {
        return ack({
          ok: false,
          error: { code: "conflict", message: "the selection changed meanwhile", selection: state.selection },
        });
      }
      state.selection = { revision: p.revision + 1, items: p.items };
      emit("selection", { selection: state.selection, by: you.name });
      ack({ ok: true, selection: state.selection });
    });
    socket.on("import:stop", (_p, ack) => {
      state.import = { ...state.import, running: false, finishedAt: new Date().toISOString() };
      emit("import", { import: state.import });
      ack({ ok: true, import: state.import });
    });
  });

  // Progress: round-robin over a few downloading images, like coalesced progress events.
  let running = true;
  let cursor = 0;
  const downloading = () => state.images.filter((i) => i.state === "downloading");
  const ticker = setInterval(() => {
    if (!running) return;
    const active = downloading();
    if (active.length < (options.downloading ?? 8)) {
      const next = state.images.find((i) => i.state === "queued");
      if (next) active.push(next);
    }
    const image = active[cursor++ % Math.max(1, active.length)];
    if (!image) return;
    const step = Math.floor(image.bytesTotal / 80);
    const bytesDone = Math.min(image.bytesTotal, image.bytesDone + step);
    const done = bytesDone >= image.bytesTotal;
    const updated: ImageState = {
      ...image,
      bytesDone,
      state: done ? "synced" : "downloading",
      updatedAt: new Date().toISOString(),
    };
    state.images[state.images.indexOf(image)] = updated;
    emit("image", { image: updated });
    sent++;
  }, 1000 / ups);

  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    get sent() {
      return sent;
    },
    state,
    emit,
    setRunning(value) {
      running = value;
    },
    async stop() {
      clearInterval(ticker);
      await io.close();
    },
  };
}
