import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";
import type Koa from "koa";
import type { ContentStore } from "@bootstream/images";
import { CommandError } from "@bootstream/protocol";
import { parseRange } from "../http-range";
import type { RackCredentials } from "./racks/credentials";
import type { OnDemandOutcome } from "./cluster/on-demand";

const SHA256 = /^[0-9a-f]{64}$/;
/**
 * A symlink is not followed (ELOOP), and a FIFO planted in the store opens at once instead of
 * blocking a threadpool thread until some writer comes (O_NONBLOCK; it changes nothing for a
 * regular file). Whatever opened, only a regular file is then served.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

const refuse = (ctx: Koa.Context, status: number, code: CommandError["code"], message: string) => {
  ctx.status = status;
  ctx.body = { ok: false, error: new CommandError(code, message).toBody() };
};

/**
 * GET /files/:sha256 for rack agents and peer region nodes: a rack token (or the rack secret; for
 * peers, the cluster's peer secret) as a bearer token, a strict name, and single-range requests so
 * an interrupted pull resumes. The sha256 is a perfect strong ETag. Only verified files are served;
 * a peer may add `?partial=SIZE` to follow a download still running here (see servePartial). On a
 * cluster, a rack asking for an image's file this node lacks yet waits while it comes from a peer
 * (`fetchMissing`, cluster/on-demand.ts), then gets it verified; 503 + Retry-After if that takes long.
 */
export function filesRoute(
  store: ContentStore,
  credentials: RackCredentials,
  checkPeer: (secret: unknown) => boolean = () => false,
  fetchMissing: ((sha256: string) => Promise<OnDemandOutcome>) | null = null,
): Koa.Middleware {
  return async (ctx) => {
    const match = /^Bearer\s+(\S+)$/i.exec(ctx.get("authorization"));
    const peer = checkPeer(match?.[1]);
    if (!peer && (await credentials.check(match?.[1])) === null) {
      ctx.set("WWW-Authenticate", 'Bearer realm="bootstream-rack"');
      return refuse(
        ctx,
        401,
        "unauthorized",
        "files are for rack agents: send 'Authorization: Bearer RACK_TOKEN' (or RACK_SECRET)",
      );
    }
    const sha = (ctx.params as { sha256?: string }).sha256 ?? "";
    if (!SHA256.test(sha))
      return refuse(ctx, 400, "invalid", "a file is named by its sha256: 64 lowercase hex characters");
    let file = await openStored(store, sha);
    if (!file && peer && ctx.query.partial !== undefined) return servePartial(ctx, store, sha);
    // Peers never fetch on demand for each other: a node that lacks a file says so at once.
    if (!file && !peer && fetchMissing) {
      const outcome = await fetchMissing(sha);
      if (outcome === "fetching") {
        ctx.set("Retry-After", String(FETCHING_RETRY_S));
        return refuse(
          ctx,
          503,
          "not-found",
          `${sha} is on its way to this region node from a peer; try again in ${FETCHING_RETRY_S} s`,
        );
      }
      if (outcome === "stored") file = await openStored(store, sha);
    }
    if (!file) return refuse(ctx, 404, "not-found", `no file ${sha} in the region store`);
    let streamed = false;
    try {
      const info = await file.stat();
      if (!info.isFile()) return refuse(ctx, 404, "not-found", `no file ${sha} in the region store`);
      streamed = serve(ctx, file, sha, info.size);
    } finally {
      if (!streamed) await file.close();
    }
  };
}

/** Seconds a rack is told to wait while this node fetches the file it asked for from a peer. */
const FETCHING_RETRY_S = 2;

/** OPEN_FLAGS (and the caller's regular-file check): nothing planted in the store leads out of it. */
async function openStored(store: ContentStore, sha: string): Promise<FileHandle | null> {
  try {
    return await open(store.pathOf(sha), OPEN_FLAGS);
  } catch {
    return null;
  }
}

/** Answers from an open file; true when a stream now owns (and will close) the handle. */
function serve(ctx: Koa.Context, file: FileHandle, sha: string, size: number): boolean {
  const etag = `"${sha}"`;
  ctx.set("ETag", etag);
  ctx.set("Accept-Ranges", "bytes");
  ctx.set("Cache-Control", "private, max-age=31536000, immutable");
  ctx.type = "application/octet-stream";
  if (ctx.get("if-none-match") === etag) {
    ctx.status = 304;
    return false;
  }
  const range = ctx.get("range");
  const ifRange = ctx.get("if-range");
  const wanted = range && (!ifRange || ifRange === etag) ? parseRange(range, size) : null;
  if (wanted === "unsatisfiable") {
    ctx.set("Content-Range", `bytes */${size}`);
    refuse(ctx, 416, "invalid", `range ${range} is outside 0-${size - 1}`);
    return false;
  }
  if (wanted) {
    ctx.status = 206;
    ctx.set("Content-Range", `bytes ${wanted.start}-${wanted.end}/${size}`);
    ctx.length = wanted.end - wanted.start + 1;
    if (ctx.method === "HEAD") return false;
    ctx.body = file.createReadStream({ ...wanted, highWaterMark: 1 << 20 });
    return true;
  }
  ctx.status = 200;
  ctx.length = size;
  if (ctx.method === "HEAD") return false;
  ctx.body = file.createReadStream({ highWaterMark: 1 << 20 });
  return true;
}

/** How often a followed `.partial` is looked at for new bytes, and how long it may stay still. */
const FOLLOW_POLL_MS = 50;
const FOLLOW_IDLE_MS = 5_000;

/**
 * For peers only (`?partial=SIZE`): the bytes of a download running on this node, from the asked
 * offset, streamed as they land (like `tail -f`) until the file is installed — then to its end — or
 * the download stays still for FOLLOW_IDLE_MS. A follower so keeps pace with the leader's import,
 * and a leader killed mid-file costs the next one little. These bytes are unverified, so never
 * served to racks; the peer's downloader checks the whole file's size and sha256 before installing
 * it. The answer is the file's own framing (200 from zero, 206 `bytes a-(SIZE-1)/SIZE`) without a
 * length: when it ends short, the downloader resumes with a Range, as after any cut.
 */
async function servePartial(ctx: Koa.Context, store: ContentStore, sha: string): Promise<void> {
  ctx.set("Cache-Control", "no-store");
  const size = Number(ctx.query.partial);
  if (!Number.isSafeInteger(size) || size <= 0)
    return refuse(ctx, 400, "invalid", "?partial takes the file's size in bytes");
  const range = /^bytes=(\d+)-$/.exec(ctx.get("range"));
  const from = range ? Number(range[1]) : 0;
  if (from >= size) return refuse(ctx, 416, "invalid", `range starts beyond ${size} bytes`);
  let file: FileHandle;
  try {
    file = await open(store.partialPath(sha), OPEN_FLAGS);
  } catch {
    ctx.set("Retry-After", "1");
    return refuse(ctx, 503, "not-found", `${sha} is neither stored nor downloading on this node yet`);
  }
  if (!(await file.stat()).isFile()) {
    await file.close();
    return refuse(ctx, 404, "not-found", `${sha} is neither stored nor downloading on this node`);
  }
  ctx.type = "application/octet-stream";
  ctx.status = range ? 206 : 200;
  if (range) ctx.set("Content-Range", `bytes ${from}-${size - 1}/${size}`);
  if (ctx.method === "HEAD") return void (await file.close());
  // The `.partial` is renamed into the store when installed: the open handle then reads the stored file.
  ctx.body = Readable.from(follow(file, from, size, () => store.has(sha)));
}

async function* follow(
  file: FileHandle,
  from: number,
  size: number,
  installed: () => Promise<boolean>,
): AsyncGenerator<Buffer> {
  const buffer = Buffer.alloc(1 << 20);
  let position = from;
  let still = 0;
  let last = false;
  try {
    while (position < size) {
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, size - position), position);
      if (bytesRead > 0) {
        position += bytesRead;
        still = 0;
        yield Buffer.from(buffer.subarray(0, bytesRead));
        continue;
      }
      // Installed means no more writes: read once more to the end, then stop.
      if (last || (still += FOLLOW_POLL_MS) > FOLLOW_IDLE_MS) return;
      last = await installed();
      if (!last) await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
    }
  } finally {
    await file.close();
  }
}
