import { createHash } from "node:crypto";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import type { Logger } from "../../log";
import type { PeopleServer } from "../events";

/** Cross-node broadcast: every node's clients get every node's events, through Redis pub/sub. */
export async function attachRedisAdapter(
  io: PeopleServer,
  url: string,
  clusterId: string,
  log: Logger,
): Promise<() => Promise<void>> {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  for (const client of [pub, sub])
    client.on("error", (error: unknown) => log.error({ err: error }, "redis connection error"));
  await Promise.all([pub.connect(), sub.connect()]);
  // A forwarded command waits for the leader's answer: give it as long as a slow source read takes.
  // Channels are named after the cluster's database, so two clusters sharing one Redis never mix.
  const key = `bootstream#${createHash("sha256").update(clusterId).digest("hex").slice(0, 16)}`;
  io.adapter(createAdapter(pub, sub, { key, requestsTimeout: 20_000 }));
  log.info({ redis: url.replace(/\/\/[^@]*@/, "//***@") }, "cross-node broadcast through Redis");
  return async () => {
    await Promise.allSettled([pub.quit(), sub.quit()]);
  };
}
