// The baseline of bench/sockets.ts: a bare Socket.IO 4 server that does what the region does on the wire
// for one `settings:update`, and nothing else: no auth, no database, no rooms, no event bus.
//   node --import tsx bench/bare-socketio-server.ts [--snapshot FILE] [--like-region]
// Forked with an IPC channel: sends { url } once it listens.
// - on connect it sends `snapshot` (the region's own snapshot JSON from FILE, so the bytes match);
// - POST /emit?autoImport=true|false broadcasts `settings` then `audit`, shaped and numbered like the
//   region's, and answers like the region's command endpoint.
// --like-region applies the region's Server options (ping 10 s / 5 s, connection state recovery,
// 1 MB maxHttpBufferSize) so that a difference can be put on those options or on the region's code.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { Server, type ServerOptions } from "socket.io";

const { values } = parseArgs({
  options: { snapshot: { type: "string" }, "like-region": { type: "boolean", default: false } },
});
const snapshot: unknown = values.snapshot ? JSON.parse(await readFile(values.snapshot, "utf8")) : {};

let seq = 0;
const http = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  if (req.method !== "POST" || url.pathname !== "/emit") {
    res.writeHead(404).end();
    return;
  }
  req.resume();
  req.on("end", () => {
    const autoImport = url.searchParams.get("autoImport") === "true";
    io.emit("settings", { settings: { autoImport }, by: "bench-admin", seq: ++seq });
    io.emit("audit", {
      entry: {
        at: new Date().toISOString(),
        by: "bench-admin",
        action: "settings:update",
        detail: `auto-import ${autoImport ? "on" : "off"}`,
      },
      seq: ++seq,
    });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, settings: { autoImport } }));
  });
});

const options: Partial<ServerOptions> = values["like-region"]
  ? {
      maxHttpBufferSize: 1_000_000,
      serveClient: false,
      pingInterval: 10_000,
      pingTimeout: 5_000,
      connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: false },
    }
  : { serveClient: false };
const io = new Server(http, options);
io.on("connection", (socket) => {
  socket.emit("snapshot", { ...(snapshot as object), seq });
});

http.listen(0, "127.0.0.1", () => {
  const { port } = http.address() as AddressInfo;
  process.send?.({ url: `http://127.0.0.1:${port}` });
});
const stop = () => io.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("disconnect", stop);
