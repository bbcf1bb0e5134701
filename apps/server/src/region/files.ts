import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import type Koa from "koa";
import type { ContentStore } from "@bootstream/images";
import { CommandError } from "@bootstream/protocol";
import { parseRange } from "../http-range";
import type { RackCredentials } from "./racks/credentials";

const SHA256 = /^[0-9a-f]{64}$/;

const refuse = (ctx: Koa.Context, status: number, code: CommandError["code"], message: string) => {
  ctx.status = status;
  ctx.body = { ok: false, error: new CommandError(code, message).toBody() };
};

/**
 * GET /files/:sha256 for rack agents: a rack token (or the rack secret) as a bearer token, a strict name, and
 * single-range requests so an interrupted pull resumes. The sha256 is a perfect strong ETag.
 */
export function filesRoute(store: ContentStore, credentials: RackCredentials): Koa.Middleware {
  return async (ctx) => {
    const match = /^Bearer\s+(\S+)$/i.exec(ctx.get("authorization"));
    if ((await credentials.check(match?.[1])) === null) {
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
    // O_NOFOLLOW and a regular-file check: a symlink planted in the store never leads out of it.
    let file: FileHandle;
    try {
      file = await open(store.pathOf(sha), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return refuse(ctx, 404, "not-found", `no file ${sha} in the region store`);
    }
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
