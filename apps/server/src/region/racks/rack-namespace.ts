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
import type { RackHub } from "./rack-hub";
import type { RackRelay } from "../cluster/rack-relay";
import { describeZodError } from "../commands/dispatch";
import type { RackCredentials } from "./credentials";
import type { ClientLimits } from "../client-limits";
import { clientAddress } from "../rate-limit";

type RackSocketData = { name: string };

/** A rack registered with a rack token joins its token's room, so revoking the token cuts it off. */
export const rackTokenRoom = (name: string) => `token:${name}`;
/** Every socket of a rack name, on every node: the newest connection closes the others. */
const rackRoom = (name: string) => `rack:${name}`;
export type RackNamespace = Namespace<
  RackClientToServer,
  RackServerToClient,
  Record<string, never>,
  RackSocketData
>;

/**
 * `/rack`: rack agents authenticate with their rack token (or the site-wide rack secret), receive
 * manifests, and report what they hold. On any node: the leader registers its own racks (RackHub);
 * a follower checks the rack exactly as the leader would and relays it to the leader
 * (cluster/rack-relay.ts). Only a follower with no way to the leader (no Redis) refuses racks.
 */
export function attachRackNamespace(
  io: PeopleServer,
  hub: RackHub,
  relay: () => RackRelay | null,
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
      // A follower relays racks to the leader; without Redis it cannot, and the rack retries elsewhere.
      if (!leading() && !relay()) return next(new Error("not-leader"));
      socket.data.name = name.data;
      // Revoking the token cuts the rack off (Sessions.disconnectToken).
      if (credential.kind === "token") await socket.join(rackTokenRoom(credential.rack));
      next();
    })().catch((error: unknown) => next(error instanceof Error ? error : new Error("internal")));
  });

  nsp.on("connection", (socket) => {
    const { name } = socket.data;
    // A restarted rack reconnects before the old socket times out: the newest connection wins, here
    // at once and on the other nodes through the adapter.
    for (const [id, other] of nsp.sockets)
      if (id !== socket.id && other.data.name === name) other.disconnect(true);
    void socket.join(rackRoom(name));
    void nsp.in(rackRoom(name)).except(socket.id).disconnectSockets(true);
    const hello = leading() ? hub.hello(name, hub.self, socket.id) : relay()?.hello(name, socket.id);
    hello?.catch((error: unknown) => log.error({ err: error, rack: name }, "could not register the rack"));

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
      const relaying = leading() ? null : relay();
      if (relaying) {
        void relaying.report(name, socket.id, parsed.data).then(reply);
        return;
      }
      if (!leading()) {
        reply({ ok: false, error: "not-leader" });
        return;
      }
      // A failure is logged by the hub (the first of an outage, then counts).
      hub.report(name, hub.self, socket.id, parsed.data).then(
        () => reply({ ok: true }),
        () => reply({ ok: false, error: "internal" }),
      );
    });

    socket.on("disconnect", () => {
      limits.socketClosed(socket.id);
      const stillHere = [...nsp.sockets.values()].some(
        (other) => other.id !== socket.id && other.data.name === name,
      );
      if (stillHere) return;
      if (!leading()) return relay()?.bye(name, socket.id);
      hub
        .bye(name, hub.self)
        .catch((error: unknown) => log.error({ err: error, rack: name }, "could not mark the rack offline"));
    });
  });

  return nsp;
}
