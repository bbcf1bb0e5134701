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
import type { ClientLimits } from "../client-limits";
import { clientAddress } from "../rate-limit";

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
  limits: ClientLimits,
): RackNamespace {
  const nsp = io.of(RACK_NAMESPACE) as unknown as RackNamespace;

  nsp.use((socket, next) => {
    const address = clientAddress(socket.handshake.address);
    if (limits.attempt(address)) return next(new Error("rate-limited"));
    const auth = socket.handshake.auth as Record<string, unknown> | undefined;
    const name = rackNameSchema.safeParse(auth?.name);
    const byToken = auth?.token !== undefined;
    const claimed = { address: socket.handshake.address, rack: name.success ? name.data : null };
    (async () => {
      const credential = await credentials.check(byToken ? auth?.token : auth?.secret);
      if (!credential) {
        // Counted, not a line each: a flood of forged racks must not flood the log.
        if (byToken)
          limits.refusals.refused("rack token", address, "rack refused: unknown or revoked rack token");
        else limits.refusals.refused("rack secret", address, "rack refused: wrong rack secret");
        return next(new Error("unauthorized"));
      }
      if (!name.success) return next(new Error(`invalid rack name: ${describeZodError(name.error)}`));
      const refusal = await credentials.refusal(credential, name.data);
      if (refusal !== null) {
        // Counted by kind of refusal (the names quoted in it taken out: a bounded set of kinds).
        limits.refusals.refused(
          `rack name: ${refusal.replace(/"[^"]*"/g, "…")}`,
          address,
          "rack refused: credential not valid for this rack name",
          { rack: claimed.rack, reason: refusal },
        );
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
      // Each report may be a database write: a rack reports at most twice a second; a forged or
      // broken one sending more gets "rate-limited" and nothing is applied.
      if (!limits.rackReport(socket.id)) {
        reply({ ok: false, error: "rate-limited" });
        return;
      }
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
      limits.socketClosed(socket.id);
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
