import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  RACK_NAMESPACE,
  rackReportSchema,
  type Manifest,
  type ManifestImage,
  type RackClientToServer,
  type RackReport,
  type RackServerToClient,
} from "@bootstream/protocol";
import { Server as SocketServer, type Namespace } from "socket.io";

// A region that breaks the protocol, for the agent's defences: it can send the rack a manifest our
// real region never would (names that climb out of the rack's tree, layouts that collide, values of
// the wrong type). It speaks just enough of `/rack` and GET /files/:sha256 to get an agent to a
// published set first. Everything the real region can do is tested against the real region, in
// test/integration/rack-agent.test.ts; do not grow this into a second region.

export type HostileFile = { bytes: Buffer; sha256: string };
export type ReceivedReport = { name: string; report: RackReport };

export class HostileRegion {
  readonly secret = "test-rack-secret-0123456789abcdef0123456789";
  readonly reports: ReceivedReport[] = [];
  readonly fileRequests: string[] = [];
  private readonly files = new Map<string, Buffer>();
  private readonly http: Server;
  private readonly io: SocketServer;
  private readonly nsp: Namespace<RackClientToServer, RackServerToClient>;
  private waiters: (() => void)[] = [];
  url = "";

  private constructor() {
    this.http = createServer((req, res) => this.serveFile(req, res));
    this.io = new SocketServer(this.http);
    this.nsp = this.io.of(RACK_NAMESPACE) as unknown as Namespace<RackClientToServer, RackServerToClient>;
    this.nsp.use((socket, next) => {
      const auth = socket.handshake.auth as { secret?: unknown; name?: unknown };
      if (auth.secret !== this.secret) return next(new Error("unauthorized"));
      socket.data = { name: String(auth.name) };
      next();
    });
    this.nsp.on("connection", (socket) => {
      const name = (socket.data as { name: string }).name;
      socket.on("report", (report, ack) => {
        const parsed = rackReportSchema.safeParse(report);
        if (parsed.success) {
          this.reports.push({ name, report: parsed.data });
          this.notify();
        }
        ack(parsed.success ? { ok: true } : { ok: false, error: parsed.error.message });
      });
      this.notify();
    });
  }

  static async start(): Promise<HostileRegion> {
    const region = new HostileRegion();
    await new Promise<void>((resolve) => region.http.listen(0, "127.0.0.1", resolve));
    region.url = `http://127.0.0.1:${(region.http.address() as AddressInfo).port}`;
    return region;
  }

  addFile(bytes: Buffer): HostileFile {
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    this.files.set(sha256, bytes);
    return { bytes, sha256 };
  }

  /** Sends anything as the `manifest` event to every connected rack. */
  sendManifest(manifest: unknown): void {
    this.nsp.emit("manifest", manifest as Manifest);
  }

  connectedRacks(): number {
    return this.nsp.sockets.size;
  }

  lastReport(): RackReport | null {
    return this.reports.at(-1)?.report ?? null;
  }

  /** Waits until `check` holds, re-checked on each report and connection and every 50 ms. */
  async waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    this.io.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** The whole file, every time: these tests never leave a `.partial` to resume. */
  private serveFile(req: IncomingMessage, res: ServerResponse): void {
    const match = /^\/files\/([0-9a-f]{64})$/.exec(req.url ?? "");
    const sha256 = match?.[1];
    if (sha256) this.fileRequests.push(sha256);
    const bytes = sha256 ? this.files.get(sha256) : undefined;
    if (req.headers.authorization !== `Bearer ${this.secret}` || !bytes) {
      res.writeHead(bytes ? 401 : 404).end();
      return;
    }
    res.writeHead(200, { etag: `"${sha256}"`, "content-length": bytes.length }).end(bytes);
  }
}

/** A manifest image whose files are the given ones, named after their index unless `names` says. */
export function image(id: string, version: string, files: HostileFile[], names?: string[]): ManifestImage {
  return {
    id,
    version,
    files: files.map((f, i) => ({
      sha256: f.sha256,
      size: f.bytes.length,
      ftype: "test",
      name: names?.[i] ?? `file-${i}`,
    })),
  };
}
