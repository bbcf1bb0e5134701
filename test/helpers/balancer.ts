import { createConnection, createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/** One connection the balancer took: which backend it went to, and the first line the client sent. */
export type BalancedConnection = { index: number; backend: number; firstLine: string | null };

export type Balancer = {
  url: string;
  /** Every connection so far, in the order they came. */
  log: BalancedConnection[];
  close(): Promise<void>;
};

/**
 * A round-robin TCP balancer, as a site puts in front of its region nodes: each new connection goes
 * to the next backend (`http://host:port`), bytes pass through untouched, and a backend that refuses
 * closes the client's connection (the client retries, and its next connection goes to the next one).
 * The log says where each connection went, with its first line (`GET /socket.io/…`, `GET /files/…`).
 */
export async function startBalancer(backends: readonly string[]): Promise<Balancer> {
  const targets = backends.map((backend) => new URL(backend));
  const log: BalancedConnection[] = [];
  const open = new Set<Socket>();
  let next = 0;
  const server = createServer((client) => {
    const backend = next++ % targets.length;
    const entry: BalancedConnection = { index: log.length, backend, firstLine: null };
    log.push(entry);
    const target = targets[backend]!;
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    open.add(client);
    open.add(upstream);
    client.once("data", (chunk: Buffer) => {
      entry.firstLine = chunk.toString("latin1").split("\r\n", 1)[0] ?? null;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
