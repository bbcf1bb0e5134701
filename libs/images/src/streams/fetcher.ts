import { open } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import type { Dispatcher } from "undici";
import { formatBytes } from "../present/format";
import { SourceError, errorMessage } from "./source-error";
import { MAX_REDIRECTS, REDIRECT_STATUSES, redirectRefusal } from "./redirect";
import { displayUrl } from "./source-url";

/**
 * Reads one whole document (an index or a product file). Rejects with SourceError, or with the
 * signal's reason once `signal` aborts. `authorization` (the source's Basic credentials) is sent
 * on every hop, which redirectRefusal keeps on the source's own host.
 */
export type Fetcher = (
  url: URL,
  signal?: AbortSignal,
  maxBytes?: number,
  authorization?: string,
) => Promise<Uint8Array>;

export type FetcherOptions = {
  /** TCP/TLS connect. */
  connectTimeoutMs?: number;
  /** Longest wait for the response headers, and longest gap between two body chunks. */
  idleTimeoutMs?: number;
  /** The whole document, so a server trickling bytes cannot hold a read forever. */
  totalTimeoutMs?: number;
  /** Documents larger than this are refused rather than buffered. */
  maxBytes?: number;
};

const MiB = 1024 * 1024;

const DEFAULTS: Required<FetcherOptions> = {
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  totalTimeoutMs: 300_000,
  // The real stable product file is a few MB; 64 MiB leaves room to grow and still bounds memory.
  maxBytes: 64 * MiB,
};

/** http(s):// through undici, file:// from disk; the same size cap for both. */
export function createFetcher(options: FetcherOptions = {}): Fetcher {
  const limits = { ...DEFAULTS, ...options };
  // Redirects are followed by hand, so every hop is checked (see redirectRefusal).
  const dispatcher = new Agent({ connect: { timeout: limits.connectTimeoutMs } });
  return (url, signal, maxBytes, authorization) => {
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    // A caller's cap (the index is smaller than a product file) can only lower the fetcher's own.
    const capped = { ...limits, maxBytes: Math.min(limits.maxBytes, maxBytes ?? Infinity) };
    if (url.protocol === "file:") return readLocalFile(url, capped.maxBytes);
    if (url.protocol === "http:" || url.protocol === "https:") {
      return fetchHttp(url, capped, dispatcher, signal, authorization);
    }
    return Promise.reject(new SourceError(`${displayUrl(url)}: unsupported URL scheme ${url.protocol}`));
  };
}

let shared: Fetcher | undefined;

/** One fetcher (one connection pool) for every read that does not bring its own. */
export function defaultFetcher(): Fetcher {
  shared ??= createFetcher();
  return shared;
}

function tooLarge(url: URL, maxBytes: number): SourceError {
  return new SourceError(`${displayUrl(url)}: larger than the ${formatBytes(maxBytes)} limit for a document`);
}

async function readLocalFile(url: URL, maxBytes: number): Promise<Uint8Array> {
  let file;
  try {
    file = await open(fileURLToPath(url), "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "not found" : `cannot open (${code ?? errorMessage(error)})`;
    throw new SourceError(`${displayUrl(url)}: ${reason}`, { cause: error });
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw new SourceError(`${displayUrl(url)}: not a file`);
    if (stat.size > maxBytes) throw tooLarge(url, maxBytes);
    return await file.readFile();
  } catch (error) {
    if (error instanceof SourceError) throw error;
    throw new SourceError(`${displayUrl(url)}: cannot read (${errorMessage(error)})`, { cause: error });
  } finally {
    await file.close();
  }
}

async function fetchHttp(
  url: URL,
  limits: Required<FetcherOptions>,
  dispatcher: Dispatcher,
  signal: AbortSignal | undefined,
  authorization: string | undefined,
): Promise<Uint8Array> {
  const shown = displayUrl(url);
  const sent: Record<string, string> = {
    "user-agent": "bootstream",
    accept: "application/json, text/plain, */*",
    "accept-encoding": "identity",
  };
  if (authorization !== undefined) sent["authorization"] = authorization;
  const deadline = AbortSignal.timeout(limits.totalTimeoutMs);
  let response: Dispatcher.ResponseData;
  let current = url;
  for (let hop = 0; ; hop++) {
    try {
      response = await request(current, {
        dispatcher,
        headers: sent,
        headersTimeout: limits.idleTimeoutMs,
        bodyTimeout: limits.idleTimeoutMs,
        signal: signal === undefined ? deadline : AbortSignal.any([signal, deadline]),
      });
    } catch (error) {
      if (signal?.aborted === true) throw signal.reason;
      throw new SourceError(`${shown}: ${describeNetworkError(error, limits)}`, { cause: error });
    }
    if (!REDIRECT_STATUSES.has(response.statusCode)) break;
    discard(response.body);
    const location = response.headers["location"];
    const next = typeof location === "string" ? URL.parse(location, current) : null;
    // Checked against the URL asked for, not the previous hop: a chain cannot walk off the origin.
    const refusal = redirectRefusal(url, next);
    if (refusal !== null) throw new SourceError(`${shown}: redirect refused: ${refusal}`);
    if (hop >= MAX_REDIRECTS) throw new SourceError(`${shown}: more than ${MAX_REDIRECTS} redirects`);
    current = next as URL;
  }
  const { statusCode, headers, body } = response;
  if (statusCode !== 200) {
    // The body is never read nor quoted: it may be another service's answer.
    discard(body);
    throw new SourceError(`${shown}: HTTP ${statusCode}`);
  }
  const encoding = headers["content-encoding"];
  const encodings = (Array.isArray(encoding) ? encoding.join(",") : (encoding ?? ""))
    .split(",")
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== "" && e !== "identity");
  if (encodings.length > 0) {
    // Never asked for (no Accept-Encoding is sent) and never decompressed: a compressed body is
    // not the document, and inflating it is how a small answer becomes a bomb.
    discard(body);
    throw new SourceError(
      `${shown}: sent with Content-Encoding ${encodings.join(", ").slice(0, 40)}; documents are read uncompressed`,
    );
  }
  const declared = Number(headers["content-length"]);
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    discard(body);
    throw tooLarge(url, limits.maxBytes);
  }
  const chunks: Buffer[] = [];
  let received = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > limits.maxBytes) {
        discard(body);
        throw tooLarge(url, limits.maxBytes);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof SourceError) throw error;
    if (signal?.aborted === true) throw signal.reason;
    throw new SourceError(`${shown}: ${describeNetworkError(error, limits)}`, { cause: error });
  }
  return Buffer.concat(chunks, received);
}

/** Drops a body we will not read; destroying it unread makes undici emit an AbortError nobody wants. */
function discard(body: Dispatcher.ResponseData["body"]): void {
  body.on("error", () => {});
  body.destroy();
}

function describeNetworkError(error: unknown, limits: Required<FetcherOptions>): string {
  const { code, name } = error as { code?: unknown; name?: unknown };
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
      return `could not connect within ${limits.connectTimeoutMs} ms`;
    case "UND_ERR_HEADERS_TIMEOUT":
      return `timed out: no response within ${limits.idleTimeoutMs} ms`;
    case "UND_ERR_BODY_TIMEOUT":
      return `timed out: the response stalled for ${limits.idleTimeoutMs} ms`;
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
      return "host not found";
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return "connection closed by the server";
  }
  if (name === "TimeoutError") return `timed out: not complete within ${limits.totalTimeoutMs} ms`;
  return errorMessage(error);
}
