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

// A test double of the region's side of the rack protocol: the `/rack` namespace and GET /files/:sha256.
// Only for the rack agent's own tests; the real region lives in ../region.

export type FakeFile = { bytes: Buffer; sha256: string };

export type FileBehaviour =
  /** Serve at most this many bytes a second (to catch a download mid-file). */
  | { kind: "slow"; bytesPerSecond: number }
  | { kind: "status"; status: number }
  /** Serve these bytes instead of the file's own (a sha256 mismatch). */
  | { kind: "corrupt" };

export type ReceivedReport = { name: string; report: RackReport };

export class FakeRegion {
  readonly secret: string;
  readonly reports: ReceivedReport[] = [];
  readonly fileRequests: { sha256: string; range: string | null }[] = [];
  readonly refused: string[] = [];
  private readonly files = new Map<string, Buffer>();
  private readonly behaviours = new Map<string, FileBehaviour>();
  private manifest: Manifest = { generation: 0, images: [] };
  private readonly http: Server;
  private readonly io: SocketServer;
  private readonly nsp: Namespace<RackClientToServer, RackServerToClient>;
  private waiters: (() => void)[] = [];
  url = "";

  private constructor(secret: string) {
    this.secret = secret;
    this.http = createServer((req, res) => this.serveFile(req, res));
    this.io = new SocketServer(this.http, { pingInterval: 1_000, pingTimeout: 2_000 });
    this.nsp = this.io.of(RACK_NAMESPACE) as unknown as Namespace<RackClientToServer, RackServerToClient>;
    this.nsp.use((socket, next) => {
      const auth = socket.handshake.auth as { secret?: unknown; name?: unknown };
      if (auth.secret !== this.secret) {
        this.refused.push(String(auth.name));
        return next(new Error("unauthorized"));
      }
      socket.data = { name: String(auth.name) };
      next();
    });
    this.nsp.on("connection", (socket) => {
      const name = (socket.data as { name: string }).name;
      socket.emit("manifest", this.manifest);
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

  static async start(secret = "test-rack-secret"): Promise<FakeRegion> {
    const region = new FakeRegion(secret);
    await new Promise<void>((resolve) => region.http.listen(0, "127.0.0.1", resolve));
    region.url = `http://127.0.0.1:${(region.http.address() as AddressInfo).port}`;
    return region;
  }

  addFile(bytes: Buffer): FakeFile {
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    this.files.set(sha256, bytes);
    return { bytes, sha256 };
  }

  setBehaviour(sha256: string, behaviour: FileBehaviour | null): void {
    if (behaviour) this.behaviours.set(sha256, behaviour);
    else this.behaviours.delete(sha256);
  }

  /** Sets the manifest (generation + 1) and sends it to every connected rack. */
  publish(images: ManifestImage[]): Manifest {
    this.manifest = { generation: this.manifest.generation + 1, images };
    this.nsp.emit("manifest", this.manifest);
    return this.manifest;
  }

  sendRaw(manifest: unknown): void {
    this.nsp.emit("manifest", manifest as Manifest);
  }

  syncNow(): void {
    this.nsp.emit("sync:now");
  }

  connectedRacks(): number {
    return this.nsp.sockets.size;
  }

  lastReport(name?: string): RackReport | null {
    const list = name ? this.reports.filter((r) => r.name === name) : this.reports;
    return list.at(-1)?.report ?? null;
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

  private serveFile(req: IncomingMessage, res: ServerResponse): void {
    const match = /^\/files\/([0-9a-f]{64})$/.exec(req.url ?? "");
    if (!match) return end(res, 404); // Socket.IO answers its own paths before this listener runs
    const sha256 = match[1] as string;
    this.fileRequests.push({ sha256, range: req.headers.range ?? null });
    if (req.headers.authorization !== `Bearer ${this.secret}`) return end(res, 401);
    const bytes = this.files.get(sha256);
    if (!bytes) return end(res, 404);
    const behaviour = this.behaviours.get(sha256);
    if (behaviour?.kind === "status") return end(res, behaviour.status);
    const body = behaviour?.kind === "corrupt" ? Buffer.from(bytes.map((b) => b ^ 0xff)) : bytes;

    const etag = `"${sha256}"`;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const ifRange = req.headers["if-range"];
    if (range && (ifRange === undefined || ifRange === etag)) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { "content-range": `bytes */${body.length}` });
        return void res.end();
      }
      res.writeHead(206, {
        etag,
        "content-length": body.length - start,
        "content-range": `bytes ${start}-${body.length - 1}/${body.length}`,
      });
    } else {
      res.writeHead(200, { etag, "content-length": body.length, "accept-ranges": "bytes" });
    }
    const rest = body.subarray(start);
    if (behaviour?.kind !== "slow") return void res.end(rest);
    const chunk = Math.max(1, Math.floor(behaviour.bytesPerSecond / 20));
    let at = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      res.write(rest.subarray(at, at + chunk));
      at += chunk;
      if (at >= rest.length) {
        clearInterval(timer);
        res.end();
      }
    }, 50);
    res.on("close", () => clearInterval(timer));
  }
}

function end(res: ServerResponse, status: number): void {
  res.writeHead(status, { "content-type": "text/plain" });
  res.end(String(status));
}

/** A manifest image whose files are the given ones, named after their index. */
export function image(id: string, version: string, files: FakeFile[], names?: string[]): ManifestImage {
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
