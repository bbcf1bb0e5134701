import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { open, realpath } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { extname, join, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { parseRange } from "../http-range";

export type ServedDirectory = {
  /** Root URL with a trailing slash, e.g. `http://127.0.0.1:40123/`. */
  url: string;
  port: number;
  close(): Promise<void>;
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".json": "application/json",
  ".sjson": "text/plain; charset=utf-8",
  ".asc": "text/plain; charset=utf-8",
};

/** If-Range: a strong ETag equal to ours, or exactly our Last-Modified date. */
function ifRangeMatches(value: string, etag: string, lastModified: string): boolean {
  if (value.startsWith("W/")) return false;
  if (value.startsWith('"')) return value === etag;
  return Date.parse(value) === Date.parse(lastModified);
}

function notModified(req: IncomingMessage, etag: string, mtimeMs: number): boolean {
  const ifNoneMatch = req.headers["if-none-match"];
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch.split(",").some((tag) => {
      const trimmed = tag.trim();
      return trimmed === "*" || trimmed.replace(/^W\//, "") === etag;
    });
  }
  const since = Date.parse(req.headers["if-modified-since"] ?? "");
  return Number.isFinite(since) && Math.floor(mtimeMs / 1000) * 1000 <= since;
}

/** The file below `root` a URL path names, or null for anything that could reach outside it. */
async function resolveInside(root: string, urlPath: string): Promise<string | null> {
  const segments: string[] = [];
  for (const raw of urlPath.split("/").slice(1)) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (segment === "" || segment === "." || segment === ".." || /[/\\\0]/.test(segment)) return null;
    segments.push(segment);
  }
  if (segments.length === 0) return null;
  try {
    // realpath also follows symlinks: a link inside the mirror may not lead out of it.
    const real = await realpath(join(root, ...segments));
    return real.startsWith(root + sep) ? real : null;
  } catch {
    return null;
  }
}

function plain(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
  res.end(`${text}\n`);
}

async function respond(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    plain(res, 405, "method not allowed", { allow: "GET, HEAD" });
    return;
  }
  const urlPath = new URL(req.url ?? "/", "http://localhost").pathname;
  const file = await resolveInside(root, urlPath);
  let handle: FileHandle | null = null;
  try {
    handle = file === null ? null : await open(file, "r");
    // Stat the open file, not the path: a mirror rewritten meanwhile cannot mix two versions.
    const stats = handle === null ? null : await handle.stat();
    if (handle === null || stats === null || !stats.isFile()) {
      plain(res, 404, "not found");
      return;
    }
    const size = stats.size;
    const etag = `"${size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
    const lastModified = stats.mtime.toUTCString();
    const headers: Record<string, string | number> = {
      "accept-ranges": "bytes",
      "content-type": CONTENT_TYPES[extname(file ?? "")] ?? "application/octet-stream",
      etag,
      "last-modified": lastModified,
    };
    if (notModified(req, etag, stats.mtimeMs)) {
      res.writeHead(304, headers).end();
      return;
    }
    const rangeHeader = req.headers.range;
    const ifRange = req.headers["if-range"];
    const range =
      rangeHeader === undefined ||
      (typeof ifRange === "string" && !ifRangeMatches(ifRange, etag, lastModified))
        ? null
        : parseRange(rangeHeader, size);
    if (range === "unsatisfiable") {
      res.writeHead(416, { ...headers, "content-range": `bytes */${size}`, "content-length": 0 }).end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    res.writeHead(range === null ? 200 : 206, {
      ...headers,
      "content-length": end - start + 1,
      ...(range === null ? {} : { "content-range": `bytes ${start}-${end}/${size}` }),
    });
    if (req.method === "HEAD" || size === 0) {
      res.end();
      return;
    }
    const stream = handle.createReadStream({ start, end, autoClose: false });
    await pipeline(stream, res);
  } finally {
    await handle?.close();
  }
}

/**
 * A static file server for a mirror directory (node:http, no dependencies): GET and HEAD, one
 * `Range` per request (206/416), ETag and Last-Modified with If-Range / If-None-Match, content
 * streamed from disk, nothing reachable outside `dir`.
 */
export async function serveDirectory(
  dir: string,
  { host = "127.0.0.1", port = 0 }: { host?: string; port?: number } = {},
): Promise<ServedDirectory> {
  const root = await realpath(dir);
  const server = createServer((req, res) => {
    respond(root, req, res).catch(() => {
      // A client that went away mid-transfer, or a read error after the headers went out.
      if (!res.headersSent) plain(res, 500, "internal error");
      else res.destroy();
    });
  });
  await new Promise<void>((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolvePromise();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost =
    host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${address.port}/`,
    port: address.port,
    close: () =>
      new Promise<void>((resolvePromise) => {
        server.closeAllConnections();
        server.close(() => resolvePromise());
      }),
  };
}
