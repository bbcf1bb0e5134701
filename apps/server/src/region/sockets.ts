import type { Server as HttpServer } from "node:http";
import { Server } from "socket.io";
import { CommandError, type PresenceUser } from "@bootstream/protocol";
import type { RegionContext } from "./context";
import type { CommandRunner } from "./commands/dispatch";
import { PEOPLE_ROOM, type PeopleServer } from "./events";
import { clientAddress } from "./rate-limit";
import type { Metrics } from "./metrics";
import { refusalError, type ClientLimits, type Refusal } from "./client-limits";

export const MAX_PAYLOAD_BYTES = 1_000_000;

type SocketData = { user: PresenceUser };

type EngineConnection = {
  request: { socket: { remoteAddress?: string } };
  once(event: "close", listener: () => void): void;
  close(): void;
};

/** A connect_error the client can read: `message` is the contract's code, `data.message` says why. */
function refused(refusal: Refusal): Error {
  return Object.assign(new Error(refusal.code), { data: { message: refusal.message } });
}

export function createSocketServer(
  httpServer: HttpServer,
  region: RegionContext,
  commands: CommandRunner,
  metrics: Metrics,
  limits: ClientLimits,
  /**
   * Resolves once this node's live state is the cluster's (a follower that has synchronised with
   * the leader, a leader whose engine loaded): a new client's first snapshot waits for it.
   */
  known: () => Promise<void> = () => Promise.resolve(),
): PeopleServer {
  const io: PeopleServer = new Server(httpServer, {
    path: "/socket.io",
    maxHttpBufferSize: MAX_PAYLOAD_BYTES,
    serveClient: false,
    // A rack (or a wall screen) that vanishes without closing its connection is noticed within 15 s.
    pingInterval: 10_000,
    pingTimeout: 5_000,
    // Missed events are replayed to a client that comes back within two minutes; the auth middleware
    // still runs, so a revoked token does not come back.
    connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: false },
    // A connection that has not authenticated to a namespace by then is closed (Socket.IO's default
    // is 45 s, which let raw engine.io connections pile up).
    connectTimeout: limits.config.handshakeTimeoutMs,
    // Open connections per address, authenticated or not, before any work is done for them.
    allowRequest: (req, callback) => {
      const address = clientAddress(req.socket.remoteAddress);
      if (limits.connections.count(address) < limits.connections.cap) return callback(null, true);
      limits.refusals.refused("connections per address", address);
      callback(`more than ${limits.connections.cap} open connections from ${address}`, false);
    },
  });
  io.engine.on("connection", (conn: EngineConnection) => {
    const release = limits.connections.reserve(clientAddress(conn.request.socket.remoteAddress));
    // Over the cap only by handshakes that raced past allowRequest together: close it at once.
    if (release) conn.once("close", release);
    else conn.close();
  });
  // Each socket's slot on its token, released once when it leaves.
  const slots = new WeakMap<object, () => void>();

  io.use((socket, next) => {
    const address = clientAddress(socket.handshake.address);
    const attempt = limits.attempt(address);
    if (attempt) return next(refused(attempt));
    const token = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
    region.tokens
      .authenticate(token)
      .then((user) => {
        if (!user) {
          limits.refusals.refused("unauthorized", address, "socket refused: unauthorized");
          return next(new Error("unauthorized"));
        }
        const slot = limits.reserveSocket(user, address);
        if (typeof slot !== "function") return next(refused(slot));
        if (socket.conn.readyState !== "open") {
          slot(); // gone while its token was looked up
          return next(new Error("internal"));
        }
        // Released when the socket leaves, or when its connection closes before it ever joined.
        socket.conn.once("close", slot);
        slots.set(socket, slot);
        (socket.data as SocketData).user = user;
        next();
      })
      .catch((error: unknown) => {
        region.log.error({ err: error }, "socket auth failed");
        next(new Error("internal"));
      });
  });

  io.on("connection", (socket) => {
    const { user } = socket.data as SocketData;
    const address = clientAddress(socket.handshake.address);
    metrics.socketConnected(user.role);
    // The token's room at once (a revoked token is cut even while it waits below).
    void socket.join(region.sessions.roomOf(user));
    if (socket.recovered) {
      region.sessions.changed();
    } else {
      // Joined and snapshotted in one go, once the state is known: the first snapshot is the whole
      // current state, and every event after it follows its seq.
      void known().then(() => {
        if (!socket.connected) return;
        void socket.join(PEOPLE_ROOM);
        socket.emit("snapshot", { ...region.bus.live.snapshot(user), seq: region.bus.currentSeq });
        region.sessions.changed();
      });
    }

    socket.onAny((event: unknown, ...args: unknown[]) => {
      const name = typeof event === "string" ? event : String(event);
      let payload: unknown = args[0];
      let ack: unknown = args[args.length - 1];
      if (typeof payload === "function") {
        ack = payload;
        payload = {};
      }
      if (typeof ack !== "function") {
        socket.emit("command:error", {
          command: name.slice(0, 64),
          error: new CommandError(
            "invalid",
            `"${name.slice(0, 64)}" was sent without an acknowledgement callback; nothing was done`,
          ).toBody(),
        });
        return;
      }
      const reply = ack as (answer: unknown) => void;
      const refusal = limits.command(socket.id, user, address);
      if (refusal) {
        reply({ ok: false, error: refusalError(refusal).toBody() });
        return;
      }
      if (args.length > 2) {
        reply({
          ok: false,
          error: new CommandError(
            "invalid",
            `"${name.slice(0, 64)}" takes one payload object and an ack`,
          ).toBody(),
        });
        return;
      }
      void commands.run(name, payload, user).then(reply);
    });

    socket.on("disconnect", () => {
      slots.get(socket)?.();
      limits.socketClosed(socket.id);
      metrics.socketDisconnected(user.role);
      region.sessions.changed();
    });
  });

  return io;
}
