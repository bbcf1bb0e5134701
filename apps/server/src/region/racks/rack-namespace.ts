import {
  RACK_NAMESPACE,
  rackNameSchema,
  rackReportSchema,
  type RackClientToServer,
  type RackServerToClient,
} from "@bootstream/protocol";
import type { Namespace } from "socket.io";
import type { PeopleServer } from "../events";
import type { Logger } from "../../log";
import type { RackRegistry } from "./rack-registry";
import { describeZodError } from "../commands/dispatch";

type RackSocketData = { name: string };
export type RackNamespace = Namespace<
  RackClientToServer,
  RackServerToClient,
  Record<string, never>,
  RackSocketData
>;

/** `/rack`: rack agents authenticate with the rack secret, receive manifests, and report what they hold. */
export function attachRackNamespace(
  io: PeopleServer,
  racks: RackRegistry,
  checkSecret: (secret: unknown) => Promise<boolean>,
  leading: () => boolean,
  log: Logger,
): RackNamespace {
  const nsp = io.of(RACK_NAMESPACE) as unknown as RackNamespace;

  nsp.use((socket, next) => {
    const auth = socket.handshake.auth as Record<string, unknown> | undefined;
    const name = rackNameSchema.safeParse(auth?.name);
    checkSecret(auth?.secret)
      .then((ok) => {
        if (!ok) {
          log.warn(
            { address: socket.handshake.address, rack: name.success ? name.data : null },
            "rack refused: wrong rack secret",
          );
          return next(new Error("unauthorized"));
        }
        if (!name.success) return next(new Error(`invalid rack name: ${describeZodError(name.error)}`));
        // Racks talk to the leading node only (point them at the cluster's address); they retry.
        if (!leading()) return next(new Error("not-leader"));
        socket.data.name = name.data;
        next();
      })
      .catch((error: unknown) => next(error instanceof Error ? error : new Error("internal")));
  });

  nsp.on("connection", (socket) => {
    const { name } = socket.data;
    // A restarted rack reconnects before the old socket times out: the newest connection wins.
    for (const [id, other] of nsp.sockets)
      if (id !== socket.id && other.data.name === name) other.disconnect(true);
    racks.connected(name).then(
      () => socket.emit("manifest", racks.manifest),
      (error: unknown) => log.error({ err: error, rack: name }, "could not register the rack"),
    );

    socket.on("report", (report, ack) => {
      const reply = typeof ack === "function" ? ack : () => undefined;
      const parsed = rackReportSchema.safeParse(report);
      if (!parsed.success) {
        reply({ ok: false, error: describeZodError(parsed.error) });
        return;
      }
      racks.report(name, parsed.data).then(
        () => reply({ ok: true }),
        (error: unknown) => {
          log.error({ err: error, rack: name }, "rack report failed");
          reply({ ok: false, error: "internal" });
        },
      );
    });

    socket.on("disconnect", () => {
      const stillHere = [...nsp.sockets.values()].some(
        (other) => other.id !== socket.id && other.data.name === name,
      );
      if (!stillHere)
        racks
          .disconnected(name)
          .catch((error: unknown) =>
            log.error({ err: error, rack: name }, "could not mark the rack offline"),
          );
    });
  });

  return nsp;
}
