import type { Server as HttpServer } from "node:http";
import { Server } from "socket.io";
import { CommandError, type PresenceUser } from "@bootstream/protocol";
import type { RegionContext } from "./context";
import type { CommandRunner } from "./commands/dispatch";
import { PEOPLE_ROOM, type PeopleServer } from "./events";
import { TokenBucket } from "./rate-limit";
import type { Metrics } from "./metrics";

export const MAX_PAYLOAD_BYTES = 1_000_000;
export const COMMANDS_BURST = 40;
export const COMMANDS_PER_SECOND = 20;

type SocketData = { user: PresenceUser };

export function createSocketServer(
  httpServer: HttpServer,
  region: RegionContext,
  commands: CommandRunner,
  metrics: Metrics,
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
  });

  io.use((socket, next) => {
    const token = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
    region.tokens
      .authenticate(token)
      .then((user) => {
        if (!user) {
          region.log.info({ address: socket.handshake.address }, "socket refused: unauthorized");
          return next(new Error("unauthorized"));
        }
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
    const bucket = new TokenBucket(COMMANDS_BURST, COMMANDS_PER_SECOND);
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
      if (!bucket.take()) {
        reply({
          ok: false,
          error: new CommandError(
            "rate-limited",
            `more than ${COMMANDS_PER_SECOND} commands a second from this connection; slow down`,
          ).toBody(),
        });
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
      metrics.socketDisconnected(user.role);
      region.sessions.changed();
    });
  });

  return io;
}
