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
import type { RackCredentials } from "./credentials";

type RackSocketData = { name: string };

/** A rack registered with a rack token joins its token's room, so revoking the token cuts it off. */
export const rackTokenRoom = (name: string) => `token:${name}`;
export type RackNamespace = Namespace<
  RackClientToServer,
  RackServerToClient,
  Record<string, never>,
  RackSocketData
>;

/**
 * `/rack`: rack agents authenticate with their rack token (or the site-wide rack secret), receive
 * manifests, and report what they hold.
 */
export function attachRackNamespace(
  io: PeopleServer,
  racks: RackRegistry,
  credentials: RackCredentials,
  leading: () => boolean,
  log: Logger,
): RackNamespace {
  const nsp = io.of(RACK_NAMESPACE) as unknown as RackNamespace;

  nsp.use((socket, next) => {
    const auth = socket.handshake.auth as Record<string, unknown> | undefined;
    const name = rackNameSchema.safeParse(auth?.name);
    const byToken = auth?.token !== undefined;
    const claimed = { address: socket.handshake.address, rack: name.success ? name.data : null };
    (async () => {
      const credential = await credentials.check(byToken ? auth?.token : auth?.secret);
      if (!credential) {
        const why = byToken
          ? "rack refused: unknown or revoked rack token"
          : "rack refused: wrong rack secret";
        log.warn(claimed, why);
        return next(new Error("unauthorized"));
      }
      if (!name.success) return next(new Error(`invalid rack name: ${describeZodError(name.error)}`));
      const refusal = await credentials.refusal(credential, name.data);
      if (refusal !== null) {
        log.warn({ ...claimed, reason: refusal }, "rack refused: credential not valid for this rack name");
        return next(new Error("unauthorized"));
      }
      // Racks talk to the leading node only (point them at the cluster's address); they retry.
      if (!leading()) return next(new Error("not-leader"));
      socket.data.name = name.data;
      // Revoking the token cuts the rack off (Sessions.disconnectToken).
      if (credential.kind === "token") await socket.join(rackTokenRoom(credential.rack));
      next();
    })().catch((error: unknown) => next(error instanceof Error ? error : new Error("internal")));
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
