import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { rm } from "node:fs/promises";
import Koa from "koa";
import Router from "@koa/router";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ContentStore, downloadFile } from "@bootstream/images";
import { payload, sha256, tempDir } from "../../../../../libs/images/src/store/test-helpers";
import { createLogger } from "../../log";
import { Database } from "../db/database";
import { TokenService, hashToken } from "../services/tokens";
import { RackCredentials } from "../racks/credentials";
import { filesRoute } from "../files";
import { OnDemandFiles } from "./on-demand";

const RACK_SECRET = "rack-secret-0123456789abcdef0123456789";
const PEER_SECRET = "peer-secret-0123456789abcdef0123456789";

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * A region node's `/files` on a cluster, in process with its real store and downloader: the peer is
 * a real HTTP server holding the file (or holding it back, or serving the wrong bytes).
 */
describe("/files on a node that lacks a file a rack asks for (fetched from a peer first)", () => {
  const content = payload(256 * 1024, 7);
  const sha = sha256(content);
  const other = sha256(payload(10, 9));
  let dir: string;
  let db: Database;
  let store: ContentStore;
  let node: { server: Server; url: string };
  let peer: { server: Server; url: string };
  let onDemand: OnDemandFiles;
  /** What the peer serves, and a gate it waits on before answering. */
  let peerBytes: Buffer;
  let peerGate: Promise<void>;
  let peerAsked = 0;

  beforeEach(async () => {
    dir = await tempDir();
    db = await Database.open({ dataDir: dir, databaseUrl: null });
    store = await ContentStore.open(dir);
    peerBytes = content;
    peerGate = Promise.resolve();
    peerAsked = 0;
    peer = await serve((req, res) => {
      peerAsked++;
      if (req.headers.authorization !== `Bearer ${PEER_SECRET}`) return void res.writeHead(401).end();
      void peerGate.then(() => res.writeHead(200, { "content-length": peerBytes.length }).end(peerBytes));
    });
    onDemand = new OnDemandFiles({
      // Only `sha` is an image's file.
      sizeOf: (wanted) => Promise.resolve(wanted === sha ? content.length : null),
      store,
      fetch: async (file, signal) => {
        await downloadFile({
          store,
          url: `${peer.url}/files/${file.sha256}`,
          sha256: file.sha256,
          size: file.size,
          headers: { authorization: `Bearer ${PEER_SECRET}` },
          signal,
          retries: 0,
        });
        return true;
      },
      log: createLogger("silent", "on-demand-test"),
      waitMs: 1_000,
    });
    const credentials = new RackCredentials(new TokenService(db), hashToken(RACK_SECRET));
    const router = new Router();
    const route = filesRoute(
      store,
      credentials,
      (secret) => secret === PEER_SECRET,
      (wanted) => onDemand.get(wanted),
    );
    router.get("/files/:sha256", route);
    const app = new Koa();
    app.use(router.routes());
    node = await serve(app.callback());
  });
  afterEach(async () => {
    await onDemand?.close();
    node.server.close();
    peer.server.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  const ask = (wanted: string, secret = RACK_SECRET) =>
    fetch(`${node.url}/files/${wanted}`, { headers: { authorization: `Bearer ${secret}` } });

  it("fetches the file from the peer, verifies it, serves it to the rack and keeps it", async () => {
    expect(await store.has(sha)).toBe(false);
    const response = await ask(sha);
    expect(response.status).toBe(200);
    expect(sha256(Buffer.from(await response.arrayBuffer()))).toBe(sha);
    expect(await store.has(sha)).toBe(true);
    expect((await ask(sha)).status).toBe(200);
    expect(peerAsked).toBe(1);
  });

  it("answers 503 with Retry-After while a slow fetch goes on, one fetch for every asker, then serves it", async () => {
    let open!: () => void;
    peerGate = new Promise((resolve) => (open = resolve));
    const [first, second] = await Promise.all([ask(sha), ask(sha)]);
    expect([first.status, second.status]).toEqual([503, 503]);
    expect(first.headers.get("retry-after")).toBe("2");
    expect(((await first.json()) as { error: { code: string } }).error.code).toBe("not-found");
    open();
    await expect.poll(() => store.has(sha)).toBe(true);
    expect((await ask(sha)).status).toBe(200);
    expect(peerAsked).toBe(1);
  });

  it("never serves bytes that do not hash to the name: the peer's wrong bytes are not installed", async () => {
    peerBytes = Buffer.from(content).fill(1, 0, 10);
    expect((await ask(sha)).status).toBe(404);
    expect(await store.has(sha)).toBe(false);
  });

  it("fetches nothing for a file no image needs, nor for a peer (peers never fetch for each other)", async () => {
    expect((await ask(other)).status).toBe(404);
    expect((await ask(sha, PEER_SECRET)).status).toBe(404);
    expect(peerAsked).toBe(0);
  });
});
