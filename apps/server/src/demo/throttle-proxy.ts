import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { Transform } from "node:stream";

/**
 * A TCP proxy in front of a real server that limits how fast bytes flow back to the client and
 * counts them. The demo puts it in front of its loopback mirror so an import lasts long enough to
 * watch; tests use it to stop, kill or deselect mid-download and to count the bytes a resume saved.
 */
export class ThrottleProxy {
  bytesPerSecond: number;
  bytesToClient = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    bytesPerSecond: number,
  ) {
    this.bytesPerSecond = bytesPerSecond;
  }

  static async start(target: string, bytesPerSecond = Infinity): Promise<ThrottleProxy> {
    const upstream = new URL(target);
    const proxyRef: { current: ThrottleProxy | null } = { current: null };
    const server = createServer((client) => {
      const proxy = proxyRef.current!;
      const remote = createConnection({ host: upstream.hostname, port: Number(upstream.port) });
      proxy.sockets.add(client).add(remote);
      const drop = () => {
        client.destroy();
        remote.destroy();
        proxy.sockets.delete(client);
        proxy.sockets.delete(remote);
      };
      client.on("error", drop).on("close", drop);
      // A server that ends its side (a response sent with `connection: close`) has its last bytes
      // still in the throttle: the pipe ends the client once they are through. Only a broken
      // upstream connection cuts the client at once.
      remote.on("error", drop).on("close", (hadError) => hadError && drop());
      client.pipe(remote);
      remote.pipe(proxy.throttle()).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    proxyRef.current = new ThrottleProxy(
      server,
      `http://127.0.0.1:${port}${upstream.pathname}`,
      bytesPerSecond,
    );
    return proxyRef.current;
  }

  private throttle(): Transform {
    const counter = (n: number) => (this.bytesToClient += n);
    const rate = () => this.bytesPerSecond;
    return new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        const perSecond = rate();
        if (!Number.isFinite(perSecond)) {
          counter(chunk.length);
          return callback(null, chunk);
        }
        // Small slices keep the flow even, so "mid-download" lasts long enough to act on.
        const slice = Math.max(1024, Math.floor(perSecond / 20));
        let offset = 0;
        const next = () => {
          if (offset >= chunk.length) return callback();
          const part = chunk.subarray(offset, offset + slice);
          offset += part.length;
          counter(part.length);
          this.push(part);
          setTimeout(next, (part.length / perSecond) * 1000);
        };
        next();
      },
    });
  }

  /** Cuts every open connection, as a network failure would. */
  cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
