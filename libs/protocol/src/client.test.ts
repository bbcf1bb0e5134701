import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server, type Socket as ServerSocket } from "socket.io";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CommandError, createClient, isTimeout, type BootstreamClient, type ClientChange } from "./client";
import type { ClientToServerEvents, ServerToClientEvents } from "./events";
import { IDLE_VERIFY, type Snapshot } from "./state";

// A tiny fake region: real Socket.IO, token check, a handful of commands. Enough to exercise the
// client's connection handling, acks, timeouts and gap repair without the real server.

type FakeSocket = ServerSocket<ClientToServerEvents, ServerToClientEvents>;

function snapshot(patch: Partial<Snapshot> = {}): Snapshot {
  return {
    images: [],
    selection: { revision: 1, items: [] },
    settings: { autoImport: false, bandwidthLimit: null, importWindow: null },
    source: { url: "http://mirror/", keyringSet: false, lastFetch: null, error: null },
    racks: [],
    import: { running: false, trigger: null, startedAt: null, finishedAt: null, error: null },
    verify: IDLE_VERIFY,
    you: { name: "admin", role: "admin" },
    ...patch,
  };
}

let io: Server<ClientToServerEvents, ServerToClientEvents>;
let url: string;
let seq = 0;
let sockets: FakeSocket[] = [];
let current: Snapshot;
let stateGets = 0;
const clients: BootstreamClient[] = [];

beforeEach(async () => {
  seq = 100;
  sockets = [];
  stateGets = 0;
  current = snapshot();
  const http = createServer();
  io = new Server(http);
  io.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: string }).token;
    next(token === "good" ? undefined : new Error("unauthorized"));
  });
  io.on("connection", (socket: FakeSocket) => {
    sockets.push(socket);
    socket.emit("snapshot", { ...current, seq: ++seq });
    socket.on("state:get", (_p, ack) => {
      stateGets++;
      ack({ ok: true, snapshot: { ...current, seq } });
    });
    socket.on("settings:update", (p, ack) => {
      current = { ...current, settings: { ...current.settings, ...p } };
      io.emit("settings", { settings: current.settings, by: "admin", seq: ++seq });
      ack({ ok: true, settings: current.settings });
    });
    socket.on("selection:save", (p, ack) => {
      if (p.revision !== current.selection.revision) {
        ack({
          ok: false,
          error: { code: "conflict", message: "the selection changed", selection: current.selection },
        });
        return;
      }
      current = { ...current, selection: { revision: p.revision + 1, items: p.items } };
      ack({ ok: true, selection: current.selection });
    });
    socket.on("import:start", (_p, ack) => {
      ack({ ok: false, error: { code: "forbidden", message: "viewers cannot import" } });
    });
    // import:stop never answers: the client must time out.
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await io.close();
});

function client(token = "good", extra: Partial<Parameters<typeof createClient>[0]> = {}): BootstreamClient {
  const c = createClient({ url, token, io: { transports: ["websocket"], reconnectionDelay: 50 }, ...extra });
  clients.push(c);
  return c;
}

function waitFor(c: BootstreamClient, predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (predicate()) return resolve();
    const timer = setTimeout(() => {
      off();
      reject(new Error("condition not met in time"));
    }, timeoutMs);
    const off = c.subscribe(() => {
      if (!predicate()) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

describe("createClient", () => {
  it("connects, resolves after the snapshot and reports who we are", async () => {
    const c = client();
    expect(c.status).toBe("closed");
    const connecting = c.connect();
    expect(c.status).toBe("connecting");
    const state = await connecting;
    expect(c.status).toBe("connected");
    expect(state.ready).toBe(true);
    expect(state.seq).toBe(101);
    expect(c.state.you).toEqual({ name: "admin", role: "admin" });
  });

  it("rejects a wrong token with `unauthorized` and stays refused", async () => {
    const c = client("bad");
    await expect(c.connect()).rejects.toThrow("unauthorized");
    expect(c.status).toBe("refused");
    expect(c.error).toBe("unauthorized");
    await expect(c.command("state:get", {})).rejects.toBeInstanceOf(CommandError);
  });

  it("resolves commands with the typed result and folds the resulting events", async () => {
    const c = client();
    await c.connect();
    const changes: ClientChange[] = [];
    c.subscribe((change) => changes.push(change));
    const result = await c.command("settings:update", { autoImport: true, bandwidthLimit: null });
    expect(result).toEqual({ settings: { autoImport: true, bandwidthLimit: null, importWindow: null } });
    await waitFor(c, () => c.state.settings.autoImport);
    expect(changes).toContain("settings");
    expect(c.state.settingsBy).toBe("admin");
  });

  it("rejects refusals with a CommandError carrying the code and extra fields", async () => {
    const c = client();
    await c.connect();
    const refused = await c.command("import:start", {}).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CommandError);
    expect((refused as CommandError).code).toBe("forbidden");
    expect((refused as CommandError).message).toBe("viewers cannot import");

    current = { ...current, selection: { revision: 7, items: [] } };
    const conflict = await c.command("selection:save", { revision: 1, items: [] }).catch((e: unknown) => e);
    expect((conflict as CommandError).code).toBe("conflict");
    expect((conflict as CommandError).extra.selection).toEqual({ revision: 7, items: [] });
    // The client takes the newer selection from the error at once.
    expect(c.state.selection.revision).toBe(7);

    const saved = await c.command("selection:save", { revision: 7, items: [] });
    expect(saved.selection.revision).toBe(8);
    expect(c.state.selection.revision).toBe(8);
  });

  it("times out a command that gets no answer", async () => {
    const c = client("good", { commandTimeoutMs: 100 });
    await c.connect();
    const error = await c.command("import:stop", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).code).toBe("internal");
    expect((error as CommandError).message).toMatch(/timed out/);
    expect(isTimeout(error)).toBe(true);
  });

  it("asks state:get when it sees a gap and replaces the state", async () => {
    const c = client();
    await c.connect();
    const changes: ClientChange[] = [];
    c.subscribe((change) => changes.push(change));
    current = {
      ...current,
      settings: { autoImport: true, bandwidthLimit: null, importWindow: null },
      selection: { revision: 9, items: [] },
    };
    seq += 5; // events the client never saw
    io.emit("presence", { users: [], seq: ++seq });
    await waitFor(c, () => changes.includes("state:get"));
    expect(stateGets).toBe(1);
    expect(c.state.selection.revision).toBe(9);
    expect(c.state.settings.autoImport).toBe(true);
    expect(c.state.seq).toBe(seq);
    expect(changes).toEqual(["presence", "state:get"]);
  });

  it("ignores duplicate events", async () => {
    const c = client();
    await c.connect();
    const changes: ClientChange[] = [];
    c.subscribe((change) => changes.push(change));
    io.emit("presence", { users: [], seq: seq }); // the snapshot's own seq
    io.emit("presence", { users: [{ name: "bob", role: "viewer" }], seq: ++seq });
    await waitFor(c, () => c.state.users[0]?.name === "bob");
    expect(changes).toEqual(["presence"]);
  });

  it("follows a reconnect after the server closes the connection", async () => {
    const c = client();
    await c.connect();
    const seen: string[] = [];
    c.subscribe((change) => {
      if (change === "status") seen.push(c.status);
    });
    current = { ...current, settings: { autoImport: true, bandwidthLimit: null, importWindow: null } };
    sockets[0]?.disconnect(true);
    await waitFor(c, () => c.status === "reconnecting");
    await waitFor(c, () => c.status === "connected");
    expect(seen).toEqual(["reconnecting", "connected"]);
    expect(c.state.settings.autoImport).toBe(true);
  });

  it("closes", async () => {
    const c = client();
    await c.connect();
    c.close();
    expect(c.status).toBe("closed");
    await expect(c.command("state:get", {})).rejects.toThrow(/closed/);
  });
});
