import { createHash, type Hash } from "node:crypto";
import { STATUS_CODES } from "node:http";
import { Writable } from "node:stream";
import { stream, type Dispatcher } from "undici";
import { createDownloadAgent } from "./agent";
import type { BandwidthLimiter } from "./bandwidth";
import { backoffDelay, parseRetryAfter, sleep, type BackoffOptions } from "./backoff";
import type { ContentStore, PartialMeta } from "./content-store";
import { formatBytes } from "../present/format";
import { DownloadError, NoSpaceError } from "./errors";
import { hashFile } from "./hash-file";
import { http1Eligible, http1Get, READ_BUFFER_BYTES, type ResponseHead, type ResponseHeaders } from "./http1";
import { checkStagingBytes, PartialWriter, STAGING_BYTES } from "./partial-writer";
import { assertSha256 } from "./sha";
import { MAX_REDIRECTS, REDIRECT_STATUSES, redirectRefusal } from "../streams/redirect";

export type DownloadOptions = {
  store: ContentStore;
  url: string;
  sha256: string;
  size: number;
  /** Extra request headers, e.g. `authorization` for a rack fetching from the region. */
  headers?: Record<string, string>;
  /** Aborting stops at once, keeps the `.partial` for a later call and rejects with kind "aborted". */
  signal?: AbortSignal;
  /**
   * Change in bytes of this file held locally. The deltas of one call sum to `size` on success; a
   * resumed `.partial` is reported up front, and a restart from zero reports a negative delta.
   */
  onProgress?: (deltaBytes: number) => void;
  /** Shared keep-alive dispatcher (see createDownloadAgent); without one, a private one is made and closed. */
  dispatcher?: Dispatcher;
  /** Retries after network errors, timeouts, 429 and 5xx (default 5). A response that made progress resets the count. */
  retries?: number;
  backoff?: Partial<BackoffOptions>;
  /** Longest silence while waiting for headers or between body chunks (default 30 s). */
  idleTimeoutMs?: number;
  /** Connect timeout of the private dispatcher (a shared one carries its own) and of directHttp. */
  connectTimeoutMs?: number;
  /** A longer Retry-After fails the download (retryable) instead of holding an import slot (default 60 s). */
  maxRetryAfterMs?: number;
  /** Free space needed beyond the file's remaining bytes (default 64 MiB). */
  freeSpaceMarginBytes?: number;
  /** Where free space is read from; defaults to the store's filesystem. Tests inject it. */
  freeBytes?: () => Promise<number>;
  /**
   * Bytes queued between undici's socket and the writer's staging buffer (STAGING_BYTES, 512 KiB) before
   * the socket is paused (default 512 KiB: with the staging buffer, 1 MiB in flight per download, what
   * the 1 MiB queue alone held before; 4 MiB per download put ~15 MiB more on the region's resident
   * peak during a 4-download import: docs/benchmarks.md, "Issue 15").
   */
  highWaterMark?: number;
  /**
   * Plain `http:` URLs (a rack fetching from its region, a mirror on the LAN) go through our own
   * HTTP/1.1 client (http1.ts), which reads the socket straight into the writer's staging buffer: a
   * half to a third of undici's CPU per byte (default true). `https:` and URLs with credentials
   * always use undici and the dispatcher.
   */
  directHttp?: boolean;
  /** Write the `.partial` with O_DIRECT where the filesystem takes it (default true; see PartialWriter). */
  directIo?: boolean;
  /**
   * The writer's staging buffer: STAGING_BYTES (512 KiB, the default) or LARGE_STAGING_BYTES (2 MiB:
   * a quarter of the direct writes, ~0.3 s less CPU per GB, at 1.5 MiB more resident per download;
   * a rack agent's choice).
   */
  stagingBytes?: number;
  /** Flush the `.partial` to disk in the background every this many bytes (default 32 MiB). */
  syncEveryBytes?: number;
  /**
   * DOWNLOAD_MIN_RATE: a response that brings fewer than `bytesPerSecond` over a `windowMs` window
   * is cut and retried (default 1 KiB/s over 60 s; `bytesPerSecond: 0` turns it off). Cuts for
   * slowness never reset the retry budget, so a file that keeps trickling fails after `retries + 1`
   * windows plus backoff.
   */
  minRate?: MinRate;
  /**
   * A bandwidth cap shared with the other downloads handed the same limiter: body bytes wait for it
   * before they are written, and the socket is paused behind them (the limit may change mid-download).
   */
  bandwidth?: BandwidthLimiter;
  /** Bytes of an error response's body read before the connection is cut (default 64 KiB). */
  maxErrorBodyBytes?: number;
};

export type MinRate = { bytesPerSecond: number; windowMs: number };

export const DEFAULT_MIN_RATE: MinRate = { bytesPerSecond: 1024, windowMs: 60_000 };
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

export type DownloadResult = {
  sha256: string;
  /** Body bytes of the file received over the network by this call, all attempts included. */
  bytesFetched: number;
  /** HTTP requests this call made (0 when the file was already stored or a full `.partial` verified). */
  attempts: number;
  /** Bytes of an earlier call's `.partial` that ended up in the file (0 when they were thrown away). */
  resumedFrom: number;
};

const DEFAULTS = {
  retries: 5,
  backoff: { baseMs: 500, maxMs: 30_000 },
  idleTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  maxRetryAfterMs: 60_000,
  freeSpaceMarginBytes: 64 * 1024 * 1024,
  highWaterMark: 512 * 1024,
  syncEveryBytes: 32 * 1024 * 1024,
  minRate: DEFAULT_MIN_RATE,
  maxErrorBodyBytes: MAX_ERROR_BODY_BYTES,
};

const TIMEOUT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);
const PROGRAMMING_ERROR_CODES = new Set([
  "UND_ERR_INVALID_ARG",
  "UND_ERR_INVALID_RETURN_VALUE",
  "UND_ERR_NOT_SUPPORTED",
]);
const SOCKET_ERRNOS = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ENOTFOUND",
]);

/**
 * Downloads one file into the store, verifying its size and sha256 while it streams, resuming a
 * `.partial` left by an earlier attempt and retrying transient failures. Resolves once the file is
 * installed; a file with the wrong bytes is never installed.
 */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  assertSha256(options.sha256);
  if (!Number.isSafeInteger(options.size) || options.size < 0) {
    throw new RangeError(`size must be a non-negative integer, got ${options.size}`);
  }
  new URL(options.url); // a malformed URL is the caller's bug, not a download failure
  checkStagingBytes(options.stagingBytes ?? STAGING_BYTES); // before any callback could throw it
  const dispatcher =
    options.dispatcher ??
    createDownloadAgent({ connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs });
  try {
    return await options.store.withLock(
      options.sha256,
      () => new Download(options, dispatcher).run(),
      options.signal,
    );
  } catch (err) {
    if (options.signal?.aborted && !(err instanceof DownloadError)) throw abortedError(options);
    throw err;
  } finally {
    if (dispatcher !== options.dispatcher) await dispatcher.close();
  }
}

type AttemptOutcome = "installed" | "restart" | "redirect";

/** One call's state: the hash always covers exactly the first `offset` bytes of the `.partial`. */
class Download {
  private readonly o: DownloadOptions;
  private readonly dispatcher: Dispatcher;
  private readonly sha: string;
  private readonly idleTimeoutMs: number;
  private hash: Hash = createHash("sha256");
  private offset = 0;
  private meta: PartialMeta | null = null;
  private rehashNeeded = false;
  /** Bytes the last attempt added to the `.partial`: progress resets the retry budget. */
  private lastAttemptWrote = 0;
  /**
   * The furthest the `.partial` has reached in this call: only bytes past it are progress. A source
   * that ends every response at the same byte, then restarts us from 0 (a 200 to our Range, a 416),
   * would otherwise earn the retries back for the same bytes for ever.
   */
  private furthest = 0;
  private attempts = 0;
  /** Where the next request goes: the file's URL, or where a checked redirect pointed it. */
  private current: string;
  private bytesFetched = 0;
  private resumedFrom = 0;

  constructor(options: DownloadOptions, dispatcher: Dispatcher) {
    this.o = options;
    this.dispatcher = dispatcher;
    this.sha = options.sha256;
    this.current = options.url;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs;
  }

  async run(): Promise<DownloadResult> {
    this.throwIfAborted();
    if (await this.o.store.has(this.sha)) {
      this.progress(this.o.size);
      return this.result();
    }
    await this.loadPartial();
    this.resumedFrom = this.offset;
    if (this.offset === this.o.size && this.offset > 0) {
      // Complete bytes from a run that died before installing: no request needed if they verify.
      const digest = this.hash.digest("hex");
      if (digest === this.sha) return this.install(digest);
      await this.restartFromZero();
    }

    const retries = this.o.retries ?? DEFAULTS.retries;
    const backoff = { ...DEFAULTS.backoff, ...this.o.backoff };
    const maxRetryAfterMs = this.o.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs;
    let failures = 0;
    let integrityFailures = 0;
    let hops = 0;
    for (;;) {
      this.throwIfAborted();
      if (this.rehashNeeded) await this.loadPartial();
      await this.checkSpace();
      try {
        const outcome = await this.attempt();
        if (outcome === "installed") return this.result();
        if (outcome === "redirect") {
          if (++hops > MAX_REDIRECTS)
            throw new DownloadError("http", `GET ${this.o.url}: more than ${MAX_REDIRECTS} redirects`, {
              url: this.o.url,
              retryable: false,
            });
          continue;
        }
        hops = 0;
        this.current = this.o.url;
        continue;
      } catch (err) {
        // A retry starts at the file's own URL again: a redirect may have been temporary.
        hops = 0;
        this.current = this.o.url;
        const error = this.classify(err);
        if (!error.retryable || error.kind === "aborted") throw error;
        if (error.kind === "integrity") {
          await this.restartFromZero();
          // Once may be a flipped bit on the way; twice means the source does not hold these bytes.
          if (++integrityFailures > 1) throw this.final(error, false);
          continue;
        }
        // Progress earns the retries back, unless it came too slowly (a trickle must not retry for
        // ever) or only brought again bytes an earlier attempt had already reached.
        const reached = this.offset > this.furthest;
        this.furthest = Math.max(this.furthest, this.offset);
        if (reached && this.lastAttemptWrote > 0 && !(error instanceof SlowTransferError)) failures = 0;
        if (++failures > retries) throw this.final(error, true);
        const retryAfterMs = error instanceof RetryAfterError ? error.retryAfterMs : null;
        if (retryAfterMs !== null && retryAfterMs > maxRetryAfterMs) {
          // Worth retrying, but not by us: holding a download slot that long would stall the import.
          throw this.final(error, true, `server asks to retry in ${Math.ceil(retryAfterMs / 1000)} s`);
        }
        const delay = retryAfterMs ?? backoffDelay(failures, backoff);
        try {
          await sleep(delay, this.o.signal);
        } catch {
          throw abortedError(this.o, this.offset);
        }
      }
    }
  }

  /** One HTTP request. Resolves "installed" or "restart"; throws a DownloadError (or a local fs error). */
  private async attempt(): Promise<AttemptOutcome> {
    this.attempts++;
    this.lastAttemptWrote = 0;
    const from = this.offset;
    const headers = requestHeaders(this.o.headers);
    if (from > 0) {
      headers["range"] = `bytes=${from}-`;
      const validator = this.validator();
      if (validator !== null) headers["if-range"] = validator;
    }

    let writer: PartialWriter | null = null;
    let refusal: DownloadError | null = null;
    let redirect: string | null = null;
    let restart = false;
    let discard = false;
    let answered = false;
    const factory = ({ statusCode, headers: h }: ResponseHead): Writable => {
      answered = true;
      const plan = this.planResponse(statusCode, h, from, guard.count);
      if (plan.kind === "write") {
        writer = plan.writer;
        return plan.writer;
      }
      if (plan.kind === "restart") {
        restart = true;
      } else if (plan.kind === "redirect") {
        redirect = plan.to;
      } else {
        refusal = plan.error;
        discard = plan.discard;
      }
      // Error statuses: read a small body so the connection can be reused. Unusable 2xx: cut it off.
      if (plan.kind === "refuse" && plan.cutOff) return failingSink(plan.error);
      const cut =
        plan.kind === "refuse"
          ? plan.error
          : new DownloadError("http", `GET ${this.o.url}: HTTP ${statusCode} body too long`, {
              url: this.o.url,
              status: statusCode,
              retryable: true,
            });
      return drainSink(this.o.maxErrorBodyBytes ?? DEFAULTS.maxErrorBodyBytes, guard.count, cut);
    };

    const guard = new RateGuard(this.o.minRate ?? DEFAULTS.minRate, this.o.signal);
    let streamError: unknown = null;
    const target = new URL(this.current);
    try {
      if ((this.o.directHttp ?? true) && http1Eligible(target)) {
        await http1Get(
          target,
          {
            headers,
            signal: guard.signal,
            connectTimeoutMs: this.o.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
            headersTimeoutMs: this.idleTimeoutMs,
            bodyTimeoutMs: this.idleTimeoutMs,
            readBufferBytes: Math.min(READ_BUFFER_BYTES, this.o.stagingBytes ?? STAGING_BYTES),
          },
          factory,
        );
      } else {
        await stream(
          this.current,
          {
            method: "GET",
            headers,
            dispatcher: this.dispatcher,
            signal: guard.signal,
            headersTimeout: this.idleTimeoutMs,
            bodyTimeout: this.idleTimeoutMs,
          },
          factory,
        );
      }
    } catch (err) {
      streamError = err;
    } finally {
      guard.stop();
    }
    const used = writer as PartialWriter | null;
    if (used !== null) await this.settle(used);
    if (guard.tripped !== null && !this.o.signal?.aborted) {
      const { bytesPerSecond, windowMs } = guard.tripped;
      throw new SlowTransferError(
        answered
          ? `GET ${this.o.url}: slower than ${formatBytes(bytesPerSecond)}/s over ${windowMs / 1000} s ` +
              `(after ${this.offset} of ${this.o.size} bytes)`
          : `GET ${this.o.url}: no response within ${windowMs / 1000} s (the server accepted the ` +
              `connection but sent no headers)`,
        this.o.url,
      );
    }

    if (refusal !== null) {
      if (discard) await this.restartFromZero();
      throw refusal;
    }
    if (redirect !== null) {
      this.current = redirect;
      return "redirect";
    }
    streamError ??= used?.interruption ?? null;
    if (streamError !== null) {
      if (used?.localError != null && used.localError === streamError)
        throw await this.localFailure(streamError);
      throw streamError;
    }
    if (restart) {
      await this.restartFromZero();
      return "restart";
    }
    if (this.offset < this.o.size) {
      throw new DownloadError(
        "network",
        `GET ${this.o.url}: response ended after ${this.offset} of ${this.o.size} bytes`,
        { url: this.o.url, retryable: true },
      );
    }
    const digest = this.hash.digest("hex");
    if (digest !== this.sha) {
      throw new DownloadError(
        "integrity",
        `GET ${this.o.url}: sha256 mismatch, expected ${this.sha}, got ${digest} (${this.o.size} bytes)`,
        { url: this.o.url, retryable: true },
      );
    }
    await this.install(digest);
    return "installed";
  }

  /** Decides, from status and headers alone, where the body goes. Runs inside undici's factory (sync). */
  private planResponse(
    status: number,
    h: ResponseHeaders,
    from: number,
    count: (n: number) => void,
  ):
    | { kind: "write"; writer: PartialWriter }
    | { kind: "restart" }
    | { kind: "redirect"; to: string }
    | { kind: "refuse"; error: DownloadError; cutOff: boolean; discard: boolean } {
    const url = this.o.url;
    const size = this.o.size;
    // cutOff: an unusable 2xx body is not worth reading; discard: the `.partial` cannot be resumed.
    const refuse = (error: DownloadError, cutOff = true, discard = false) => ({
      kind: "refuse" as const,
      error,
      cutOff,
      discard,
    });

    if (status === 200) {
      const length = headerNumber(h["content-length"]);
      if (length !== null && length !== size) {
        return refuse(
          new DownloadError("integrity", `GET ${url}: server sends ${length} bytes, expected ${size}`, {
            url,
            status,
            retryable: true,
          }),
        );
      }
      if (from > 0) {
        // Range ignored, or If-Range saw a new version: the old bytes are worthless.
        this.progress(-from);
        this.resumedFrom = 0;
        this.hash = createHash("sha256");
        this.offset = 0;
      }
      return { kind: "write", writer: this.writer(0, responseMeta(url, h), count) };
    }

    if (status === 206) {
      const range = parseContentRange(h["content-range"]);
      if (range !== null && range.total !== null && range.total !== size) {
        return refuse(
          new DownloadError("integrity", `GET ${url}: server has ${range.total} bytes, expected ${size}`, {
            url,
            status,
            retryable: true,
          }),
        );
      }
      if (from === 0 || range === null || range.start !== from || range.end >= size) {
        return refuse(
          new DownloadError(
            "http",
            `GET ${url}: asked for bytes ${from}-, got Content-Range ${String(h["content-range"])}; restarting`,
            { url, status, retryable: true },
          ),
          true,
          true,
        );
      }
      return { kind: "write", writer: this.writer(from, responseMeta(url, h), count) };
    }

    // Only sent when our `.partial` is not a prefix of what the server has now (it shrank, or changed).
    if (status === 416 && from > 0) return { kind: "restart" };

    if (REDIRECT_STATUSES.has(status)) {
      const location = h["location"];
      const next = typeof location === "string" ? URL.parse(location, this.current) : null;
      // Checked against the file's own URL, so a chain of hops cannot walk off the source's origin.
      const why = redirectRefusal(new URL(url), next);
      if (why !== null || next === null) {
        return refuse(
          new DownloadError("http", `GET ${url}: redirect refused: ${why ?? "no Location"}`, {
            url,
            status,
            retryable: false,
          }),
          false,
        );
      }
      return { kind: "redirect", to: next.href };
    }

    return refuse(httpError(url, status, h), false);
  }

  private writer(from: number, meta: PartialMeta, count: (n: number) => void): PartialWriter {
    const store = this.o.store;
    const previous = this.meta;
    const changed =
      from === 0 ||
      previous === null ||
      previous.url !== meta.url ||
      previous.etag !== meta.etag ||
      previous.lastModified !== meta.lastModified;
    this.meta = meta;
    return new PartialWriter({
      path: store.partialPath(this.sha),
      mode: store.fileMode,
      offset: from,
      limit: this.o.size,
      hash: this.hash,
      highWaterMark: this.o.highWaterMark ?? DEFAULTS.highWaterMark,
      syncEveryBytes: this.o.syncEveryBytes ?? DEFAULTS.syncEveryBytes,
      bandwidth: this.o.bandwidth,
      signal: this.o.signal,
      directIo: this.o.directIo ?? true,
      stagingBytes: this.o.stagingBytes ?? STAGING_BYTES,
      prepare: changed ? () => store.writePartialMeta(this.sha, meta) : undefined,
      onReceived: count,
      onWritten: (n) => this.progress(n),
      onOverflow: () =>
        new DownloadError("integrity", `GET ${this.o.url}: server sent more than ${this.o.size} bytes`, {
          url: this.o.url,
          retryable: true,
        }),
    });
  }

  /** Waits until the writer has closed its fd and takes over what it wrote. */
  private async settle(writer: PartialWriter): Promise<void> {
    if (!writer.closed) await new Promise<void>((resolve) => writer.once("close", () => resolve()));
    this.bytesFetched += writer.received;
    this.lastAttemptWrote = writer.position - this.offset;
    this.offset = writer.position;
    if (writer.hashTainted) this.rehashNeeded = true;
  }

  /** Reads the `.partial` (and its sidecar) into the hash; drops it if it cannot be this file. */
  private async loadPartial(): Promise<void> {
    const store = this.o.store;
    const reported = this.offset;
    this.rehashNeeded = false;
    this.hash = createHash("sha256");
    this.offset = 0;
    const bytes = await store.partialBytes(this.sha);
    if (bytes > this.o.size) {
      await store.discardPartial(this.sha);
    } else if (bytes > 0) {
      this.offset = await hashFile(store.partialPath(this.sha), this.hash, this.o.signal);
      this.meta = await store.readPartialMeta(this.sha);
    }
    this.progress(this.offset - reported);
  }

  private async restartFromZero(): Promise<void> {
    await this.o.store.discardPartial(this.sha);
    if (this.offset > 0) this.progress(-this.offset);
    this.hash = createHash("sha256");
    this.offset = 0;
    this.meta = null;
    this.resumedFrom = 0;
    this.rehashNeeded = false;
  }

  private async install(digest: string): Promise<DownloadResult> {
    await this.o.store.installPartial(this.sha, digest);
    return this.result();
  }

  private async checkSpace(): Promise<void> {
    const free = await this.freeBytes();
    const needed = this.o.size - this.offset + (this.o.freeSpaceMarginBytes ?? DEFAULTS.freeSpaceMarginBytes);
    if (free < needed) throw new NoSpaceError(this.o.url, needed, free);
  }

  /** If-Range only with a validator from the same URL, and never a weak ETag (RFC 9110 13.1.5). */
  private validator(): string | null {
    const meta = this.meta;
    if (meta === null || meta.url !== this.o.url) return null;
    return meta.etag ?? meta.lastModified;
  }

  private classify(err: unknown): DownloadError {
    if (err instanceof DownloadError) return err;
    if (this.o.signal?.aborted) return abortedError(this.o, this.offset);
    const code = (err as { code?: unknown } | null)?.code;
    const url = this.o.url;
    const where = `after ${this.offset} of ${this.o.size} bytes`;
    if (typeof code === "string" && TIMEOUT_CODES.has(code)) {
      const what =
        code === "UND_ERR_CONNECT_TIMEOUT" ? "could not connect" : `no data for ${this.idleTimeoutMs} ms`;
      return new DownloadError("timeout", `GET ${url}: ${what} (${where})`, {
        url,
        retryable: true,
        cause: err,
      });
    }
    const network =
      typeof code === "string" &&
      ((code.startsWith("UND_ERR") && !PROGRAMMING_ERROR_CODES.has(code)) ||
        code.startsWith("HPE_") ||
        SOCKET_ERRNOS.has(code));
    if (network) {
      const message = err instanceof Error ? err.message : String(err);
      return new DownloadError("network", `GET ${url}: ${message} (${code}, ${where})`, {
        url,
        retryable: true,
        cause: err,
      });
    }
    throw err;
  }

  private async localFailure(err: unknown): Promise<unknown> {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") return err;
    const free = await this.freeBytes().catch(() => 0);
    return new NoSpaceError(this.o.url, this.o.size - this.offset, free, err);
  }

  private freeBytes(): Promise<number> {
    return this.o.freeBytes ? this.o.freeBytes() : this.o.store.freeBytes();
  }

  private final(error: DownloadError, retryable: boolean, reason?: string): DownloadError {
    const tries = this.attempts === 1 ? "1 attempt" : `${this.attempts} attempts`;
    const why = reason === undefined ? "" : `; ${reason}`;
    return new DownloadError(error.kind, `${error.message}${why} (gave up after ${tries})`, {
      url: error.url,
      status: error.status,
      retryable,
      cause: error,
    });
  }

  private throwIfAborted(): void {
    if (this.o.signal?.aborted) throw abortedError(this.o, this.offset);
  }

  private progress(delta: number): void {
    if (delta === 0 || !this.o.onProgress) return;
    try {
      this.o.onProgress(delta);
    } catch (err) {
      // Runs inside fs callbacks: a throw here would take the process down.
      process.emitWarning(`onProgress threw: ${String(err)}`);
    }
  }

  private result(): DownloadResult {
    return {
      sha256: this.sha,
      bytesFetched: this.bytesFetched,
      attempts: this.attempts,
      resumedFrom: this.resumedFrom,
    };
  }
}

/** A response cut for staying under the minimum rate; retryable, but it never earns retries back. */
class SlowTransferError extends DownloadError {
  constructor(message: string, url: string) {
    super("timeout", message, { url, retryable: true });
  }
}

/**
 * Cuts one response that brings fewer than `bytesPerSecond` over a sliding `windowMs`: samples the
 * byte count a few times a window and compares with the newest sample at least a window old.
 */
class RateGuard {
  readonly signal: AbortSignal | undefined;
  tripped: MinRate | null = null;
  private bytes = 0;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | null = null;
  private readonly samples: { at: number; bytes: number }[] = [];

  constructor(
    private readonly rate: MinRate,
    outer: AbortSignal | undefined,
  ) {
    if (!(rate.bytesPerSecond > 0 && rate.windowMs > 0)) {
      this.signal = outer;
      return;
    }
    this.signal =
      outer === undefined ? this.controller.signal : AbortSignal.any([outer, this.controller.signal]);
    this.samples.push({ at: performance.now(), bytes: 0 });
    this.timer = setInterval(() => this.check(), Math.max(1, Math.floor(rate.windowMs / 4)));
    this.timer.unref();
  }

  readonly count = (n: number): void => {
    this.bytes += n;
  };

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  private check(): void {
    const now = performance.now();
    const { bytesPerSecond, windowMs } = this.rate;
    while (this.samples.length > 1 && (this.samples[1]?.at ?? now) <= now - windowMs) this.samples.shift();
    const oldest = this.samples[0];
    if (oldest !== undefined && oldest.at <= now - windowMs) {
      const needed = (bytesPerSecond * (now - oldest.at)) / 1000;
      if (this.bytes - oldest.bytes < needed) {
        this.tripped = this.rate;
        this.stop();
        this.controller.abort(new Error("slower than the minimum rate"));
        return;
      }
    }
    this.samples.push({ at: now, bytes: this.bytes });
  }
}

class RetryAfterError extends DownloadError {
  readonly retryAfterMs: number;
  constructor(message: string, url: string, status: number, retryAfterMs: number) {
    super("http", message, { url, status, retryable: true });
    this.retryAfterMs = retryAfterMs;
  }
}

function httpError(url: string, status: number, h: ResponseHeaders): DownloadError {
  const base = `GET ${url}: HTTP ${status} ${STATUS_CODES[status] ?? ""}`.trimEnd();
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(h["retry-after"]);
    if (retryAfterMs === null) return new DownloadError("http", base, { url, status, retryable: true });
    return new RetryAfterError(base, url, status, retryAfterMs);
  }
  const hint =
    status === 404 || status === 410
      ? " (not on the server: is the mirror complete and the index current?)"
      : status === 401 || status === 403
        ? " (check the credentials or rack secret)"
        : "";
  return new DownloadError("http", base + hint, { url, status, retryable: false });
}

function abortedError(options: DownloadOptions, offset?: number): DownloadError {
  const kept = offset === undefined ? "" : `; ${formatBytes(offset)} kept in the .partial`;
  return new DownloadError("aborted", `GET ${options.url}: aborted${kept}`, {
    url: options.url,
    retryable: true,
    cause: options.signal?.reason,
  });
}

function requestHeaders(extra: Record<string, string> | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(extra ?? {})) {
    const lower = name.toLowerCase();
    // Ranges are ours to decide; a caller's Range would corrupt the resume logic.
    if (lower !== "range" && lower !== "if-range") headers[lower] = value;
  }
  return headers;
}

function responseMeta(url: string, h: ResponseHeaders): PartialMeta {
  const etag = headerString(h["etag"]);
  return {
    url,
    etag: etag !== null && !etag.startsWith("W/") ? etag : null,
    lastModified: headerString(h["last-modified"]),
  };
}

function headerString(value: string | string[] | undefined): string | null {
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === "" ? null : text;
}

function headerNumber(value: string | string[] | undefined): number | null {
  const text = headerString(value);
  return text !== null && /^\d+$/.test(text) ? Number(text) : null;
}

/** `bytes START-END/TOTAL` (TOTAL may be `*`). */
function parseContentRange(
  value: string | string[] | undefined,
): { start: number; end: number; total: number | null } | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headerString(value)?.trim() ?? "");
  if (match === null) return null;
  const [, start, end, total] = match as unknown as [string, string, string, string];
  return { start: Number(start), end: Number(end), total: total === "*" ? null : Number(total) };
}

/** Reads and drops an error body, up to `maxBytes`: past that the connection is cut with `error`. */
function drainSink(maxBytes: number, count: (n: number) => void, error: Error): Writable {
  let seen = 0;
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      count(chunk.length);
      callback(seen > maxBytes ? error : null);
    },
  });
}

function failingSink(error: Error): Writable {
  return new Writable({
    construct(callback) {
      callback(error);
    },
    write(_chunk, _encoding, callback) {
      callback(error);
    },
  });
}
