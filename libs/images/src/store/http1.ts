import * as net from "node:net";
import { finished, type Writable } from "node:stream";

/**
 * A small HTTP/1.1 GET client for plain `http:` downloads, built for the rack's CPU budget (issue 15:
 * 1.5 s of CPU per GB synced). The socket reads straight into 1 MiB buffers of ours (net.Socket's
 * `onread`), so a loopback or LAN transfer arrives in reads of ~0.5–1 MiB instead of libuv's 64 KiB,
 * with no parser copying the body through WebAssembly memory on the way; each read is handed to the
 * sink as one chunk, and a buffer is read into again only once the sink has called back for every
 * chunk in it (the sink may hold a chunk across a disk write). One 512 MiB download over loopback:
 * 0.45 s of CPU against undici's 1.9 s (docs/benchmarks.md, "Rack CPU per GB").
 *
 * It keeps undici's `stream()` contract as downloadFile uses it, so the Download logic above is the
 * same for both: `factory` is called once with the final status and headers and returns the body's
 * sink; the promise resolves once the sink has finished and rejects with the first failure. Errors
 * carry undici's and llhttp's codes (UND_ERR_CONNECT_TIMEOUT, UND_ERR_HEADERS_TIMEOUT,
 * UND_ERR_BODY_TIMEOUT, UND_ERR_SOCKET, HPE_*), or the socket's errno, so one classifier reads both.
 *
 * Strict on what it accepts: a status line of HTTP/1.0 or 1.1, header lines of a token, a colon and
 * a value without control characters, CRLF line ends, no obsolete line folding, one Content-Length
 * (or several equal ones), Transfer-Encoding only `chunked` and never beside a Content-Length, a
 * head of at most MAX_HEAD_BYTES. One request per connection (`connection: close`): downloads are
 * large, and a connection that cannot be reused after a cut body is never a question.
 */

export type ResponseHeaders = Record<string, string | string[] | undefined>;
export type ResponseHead = { statusCode: number; headers: ResponseHeaders };
export type BodyFactory = (head: ResponseHead) => Writable;

/**
 * A sink that lets the socket read straight into its own memory (PartialWriter: its staging buffer),
 * saving the copy: `reserve(max)` gives where the next read may land or null, `commit(bytes, cb)`
 * takes the bytes read there and returns false when the next read must wait for `cb`.
 */
export type DirectSink = {
  reserve(max: number): Buffer | null;
  commit(bytes: Buffer, callback: (error: Error | null) => void): boolean;
};

function isDirectSink(sink: Writable): sink is Writable & DirectSink {
  const candidate = sink as Partial<DirectSink>;
  return typeof candidate.reserve === "function" && typeof candidate.commit === "function";
}

export type Http1Request = {
  /** Request headers by lowercase name; host and connection are ours. */
  headers: Record<string, string>;
  signal?: AbortSignal | undefined;
  connectTimeoutMs: number;
  /** From the request sent to the whole head received. */
  headersTimeoutMs: number;
  /** Longest silence between two reads of the body while we are reading (not while the sink holds us). */
  bodyTimeoutMs: number;
  /** Size of each of the two read buffers (default READ_BUFFER_BYTES). */
  readBufferBytes?: number;
};

/** Size of each read buffer: a read takes what the kernel holds, up to this. */
export const READ_BUFFER_BYTES = 1024 * 1024;
/** Read buffers per request: the sink holds one while the socket reads into the other. */
const READ_BUFFERS = 2;
/**
 * A read that cannot go into a DirectSink (it is busy writing, or has little room left) goes into
 * our buffer, but no more than this: the copy stays small and the next read can go direct again.
 */
const SPILL_BYTES = 256 * 1024;
/** Status line and headers together (llhttp's default is 16 KiB; 80 KiB in undici). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** A chunk-size line (with extensions) or a trailer line. */
const MAX_LINE_BYTES = 4096;
/** Trailer fields after the last chunk. */
const MAX_TRAILER_LINES = 64;

export class Http1Error extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "Http1Error";
    this.code = code;
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible characters, spaces, tabs and obs-text; no CR, LF or NUL (RFC 9110 5.5).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const CRLF_CRLF = Buffer.from("\r\n\r\n");

/** Plain http: only; a URL with credentials goes through undici, which knows what to do with them. */
export function http1Eligible(url: URL): boolean {
  return url.protocol === "http:" && url.username === "" && url.password === "";
}

/** Sends one GET and streams its body into the sink `factory` returns. */
export function http1Get(url: URL, request: Http1Request, factory: BodyFactory): Promise<void> {
  const text = requestText(url, request.headers); // throws on a bad header: the caller's bug
  return new Promise<void>((resolve, reject) => {
    new Exchange(url, request, factory, text, resolve, reject).start();
  });
}

function requestText(url: URL, headers: Record<string, string>): string {
  let text = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower === "host" || lower === "connection") continue;
    if (!TOKEN.test(name)) throw new TypeError(`invalid request header name: ${JSON.stringify(name)}`);
    if (!FIELD_VALUE.test(value)) throw new TypeError(`invalid value for request header ${name}`);
    text += `${lower}: ${value}\r\n`;
  }
  return `${text}\r\n`;
}

type Framing =
  | { kind: "none" }
  | { kind: "length"; left: number }
  | { kind: "close" }
  | {
      kind: "chunked";
      state: "size" | "data" | "data-end" | "trailer";
      left: number;
      line: string;
      trailers: number;
    };

class Exchange {
  private socket: net.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private settled = false;
  private closed = false;
  /** The head is read into its own buffer; the body into `buffers`. */
  private readonly head = Buffer.allocUnsafe(MAX_HEAD_BYTES);
  private headFill = 0;
  private headScanned = 0;
  private sink: Writable | null = null;
  private framing: Framing | null = null;
  /** Allocated when first needed; a small file never gets a second one. */
  private readonly buffers: (Buffer | null)[] = new Array<Buffer | null>(READ_BUFFERS).fill(null);
  /** Chunks of each buffer the sink has not called back for. */
  private readonly holds = new Array<number>(READ_BUFFERS).fill(0);
  /** The buffer the socket reads into next. */
  private reading = 0;
  /** We stopped the socket until buffer `reading` is free and no commit is pending. */
  private paused = false;
  /** The next read lands in the sink's own memory (a Content-Length body into a DirectSink). */
  private direct: Buffer | null = null;
  /** A commit that must finish before the next read. */
  private committing = false;
  /** The body can go into the sink's memory (a Content-Length body, a DirectSink). */
  private toDirect = false;
  private readonly onAbort = (): void => {
    const reason: unknown = this.request.signal?.reason;
    this.fail(reason instanceof Error ? reason : new Http1Error("UND_ERR_ABORTED", "Request aborted"));
  };

  constructor(
    private readonly url: URL,
    private readonly request: Http1Request,
    private readonly factory: BodyFactory,
    private readonly text: string,
    private readonly resolve: () => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  start(): void {
    const { signal } = this.request;
    if (signal?.aborted) return this.onAbort();
    signal?.addEventListener("abort", this.onAbort, { once: true });
    const host = this.url.hostname.replace(/^\[(.*)\]$/, "$1");
    const socket = net.connect({
      host,
      port: Number(this.url.port || 80),
      noDelay: true,
      onread: { buffer: () => this.nextBuffer(), callback: (n: number) => this.onRead(n) },
    });
    this.socket = socket;
    this.arm(this.request.connectTimeoutMs, "UND_ERR_CONNECT_TIMEOUT", "Connect Timeout Error");
    socket.once("connect", () => {
      this.arm(this.request.headersTimeoutMs, "UND_ERR_HEADERS_TIMEOUT", "Headers Timeout Error");
      socket.write(this.text);
    });
    socket.on("error", (err) => this.fail(err));
    socket.once("end", () => this.onEnd());
    socket.once("close", () => {
      // After complete() the socket is ours to close while the sink finishes.
      if (!this.settled && !this.closed) this.fail(new Http1Error("UND_ERR_SOCKET", "other side closed"));
    });
  }

  /** Where the next read lands: the head buffer's free end, then our read buffer. */
  private nextBuffer(): Buffer {
    const framing = this.framing;
    if (framing === null) return this.head.subarray(this.headFill);
    const sink = this.sink;
    this.direct = null;
    if (this.toDirect && !this.committing && framing.kind === "length") {
      this.direct = (sink as Writable & DirectSink).reserve(framing.left);
      if (this.direct !== null) return this.direct;
    }
    const index = this.reading;
    let buffer = this.buffers[index];
    if (buffer === null || buffer === undefined) {
      // Into a DirectSink our buffers only take the odd read it cannot: a spill's worth.
      const bytes = this.request.readBufferBytes ?? READ_BUFFER_BYTES;
      buffer = Buffer.allocUnsafeSlow(this.toDirect ? Math.min(bytes, SPILL_BYTES) : bytes);
      this.buffers[index] = buffer;
    }
    return buffer;
  }

  /** Returns false to stop the socket (net.Socket's onread contract). */
  private onRead(n: number): boolean {
    if (this.settled || n <= 0) return true;
    if (this.framing === null) {
      this.headFill += n;
      this.readHead();
      return !this.paused;
    }
    this.timer?.refresh();
    if (this.direct !== null) return this.commitDirect(n);
    const index = this.reading;
    const buffer = this.buffers[index] as Buffer;
    this.holds[index] = (this.holds[index] ?? 0) + 1; // until this read is parsed
    this.body(buffer, 0, n, index);
    this.release(index);
    if (this.settled) return true;
    // Read into the other buffer next; if the sink still holds it, wait for it. A DirectSink still
    // busy with this read gets no read-ahead: the next read should land in its memory, and a reserve
    // only succeeds once the sink has nothing queued.
    this.reading = (index + 1) % READ_BUFFERS;
    if ((this.holds[this.reading] ?? 0) > 0 || (this.toDirect && (this.holds[index] ?? 0) > 0)) {
      this.pause();
      return false;
    }
    return true;
  }

  /** The read went into the sink's memory: it takes the bytes as they are. */
  private commitDirect(n: number): boolean {
    const framing = this.framing as Extract<Framing, { kind: "length" }>;
    const sink = this.sink as Writable & DirectSink;
    const bytes = (this.direct as Buffer).subarray(0, n);
    this.direct = null;
    framing.left -= n; // reserve(left) bounds the read: never past the body
    let waiting = false;
    let early: { error: Error | null } | null = null;
    const taken = sink.commit(bytes, (error) => {
      if (!waiting) {
        early = { error };
        return;
      }
      this.committing = false;
      this.afterCommit(error);
    });
    if (taken || early !== null) {
      const error = (early as { error: Error | null } | null)?.error ?? null;
      if (error !== null) this.fail(error);
      else if (framing.left === 0) this.complete();
      return !this.settled && !this.closed;
    }
    waiting = true;
    this.committing = true;
    this.pause();
    return false;
  }

  private afterCommit(error: Error | null): void {
    if (error !== null) return this.fail(error);
    const framing = this.framing;
    if (framing?.kind === "length" && framing.left === 0) return this.complete();
    this.maybeResume();
  }

  private readHead(): void {
    for (;;) {
      const from = Math.max(0, this.headScanned - 3);
      const end = this.head.subarray(0, this.headFill).indexOf(CRLF_CRLF, from);
      if (end < 0) {
        this.headScanned = this.headFill;
        if (this.headFill >= MAX_HEAD_BYTES)
          this.fail(
            new Http1Error("HPE_HEADER_OVERFLOW", `response head larger than ${MAX_HEAD_BYTES} bytes`),
          );
        return;
      }
      let head: ResponseHead;
      try {
        head = parseHead(this.head.toString("latin1", 0, end));
      } catch (err) {
        return this.fail(err);
      }
      const rest = end + 4;
      if (head.statusCode >= 100 && head.statusCode < 200) {
        if (head.statusCode === 101)
          return this.fail(new Http1Error("HPE_INVALID_CONSTANT", "unexpected 101 Switching Protocols"));
        // Informational (103 Early Hints): the real response follows.
        this.head.copyWithin(0, rest, this.headFill);
        this.headFill -= rest;
        this.headScanned = 0;
        continue;
      }
      let framing: Framing;
      try {
        framing = framingOf(head);
      } catch (err) {
        return this.fail(err);
      }
      return this.begin(head, framing, this.head.subarray(rest, this.headFill));
    }
  }

  private begin(head: ResponseHead, framing: Framing, early: Buffer): void {
    let sink: Writable;
    try {
      sink = this.factory(head);
    } catch (err) {
      return this.fail(err);
    }
    this.sink = sink;
    this.framing = framing;
    this.toDirect = framing.kind === "length" && isDirectSink(sink);
    finished(sink, (err) => {
      if (err) return this.fail(err);
      // Finished: after complete() ended it, or on its own before the body was in (undici resolves
      // then too; the rest of the body is not read).
      this.closed = true;
      this.succeed();
    });
    this.armBody();
    if (framing.kind === "none") return this.complete();
    // Body bytes that came with the head go as they are: nothing reads into the head buffer again.
    if (early.length > 0) this.body(early, 0, early.length, -1);
  }

  /** Parses body bytes buffer[start, end) and hands their data to the sink. */
  private body(buffer: Buffer, start: number, end: number, index: number): void {
    const framing = this.framing;
    if (framing === null || this.settled || this.closed) return;
    if (framing.kind === "close") return this.deliver(buffer, start, end, index);
    if (framing.kind === "length") {
      const take = Math.min(framing.left, end - start);
      framing.left -= take;
      if (take > 0) this.deliver(buffer, start, start + take, index);
      if (framing.left === 0) this.complete();
      return;
    }
    if (framing.kind === "chunked") this.chunked(framing, buffer, start, end, index);
  }

  private chunked(
    framing: Extract<Framing, { kind: "chunked" }>,
    buffer: Buffer,
    start: number,
    end: number,
    index: number,
  ): void {
    let at = start;
    while (at < end && !this.settled && !this.closed) {
      if (framing.state === "data") {
        const take = Math.min(framing.left, end - at);
        this.deliver(buffer, at, at + take, index);
        at += take;
        framing.left -= take;
        if (framing.left === 0) framing.state = "data-end";
        continue;
      }
      // Line states: collect up to CRLF.
      // Only this read's bytes: past `end` the buffer holds an older read's.
      const lf = buffer.subarray(at, end).indexOf(0x0a);
      const stop = lf < 0 ? end : at + lf + 1;
      framing.line += buffer.toString("latin1", at, stop);
      at = stop;
      if (framing.line.length > MAX_LINE_BYTES)
        return this.fail(new Http1Error("HPE_CHUNK_EXTENSIONS_OVERFLOW", "chunk line too long"));
      if (!framing.line.endsWith("\n")) continue;
      if (!framing.line.endsWith("\r\n"))
        return this.fail(new Http1Error("HPE_LF_EXPECTED", "bare LF in a chunked body"));
      const line = framing.line.slice(0, -2);
      framing.line = "";
      if (framing.state === "data-end") {
        if (line !== "") return this.fail(new Http1Error("HPE_STRICT", "chunk data longer than its size"));
        framing.state = "size";
      } else if (framing.state === "size") {
        const match = /^([0-9a-fA-F]{1,13})(?:[\t ]*;.*)?$/.exec(line);
        if (match === null)
          return this.fail(
            new Http1Error(
              "HPE_INVALID_CHUNK_SIZE",
              `invalid chunk size line ${JSON.stringify(line.slice(0, 40))}`,
            ),
          );
        framing.left = Number.parseInt(match[1] as string, 16);
        framing.state = framing.left === 0 ? "trailer" : "data";
      } else if (line === "") {
        return this.complete(); // the empty line after the last chunk (and any trailers)
      } else if (headerLine(line) === null) {
        return this.fail(new Http1Error("HPE_INVALID_HEADER_TOKEN", "invalid trailer line"));
      } else if (++framing.trailers > MAX_TRAILER_LINES) {
        return this.fail(
          new Http1Error("HPE_HEADER_OVERFLOW", `more than ${MAX_TRAILER_LINES} trailer lines`),
        );
      }
    }
  }

  private deliver(buffer: Buffer, start: number, end: number, index: number): void {
    const sink = this.sink as Writable;
    if (sink.destroyed || sink.writableEnded) return;
    if (index >= 0) this.holds[index] = (this.holds[index] ?? 0) + 1;
    sink.write(buffer.subarray(start, end), (err) => {
      if (index >= 0) this.release(index);
      if (err) this.fail(err);
    });
  }

  private release(index: number): void {
    this.holds[index] = (this.holds[index] ?? 1) - 1;
    this.maybeResume();
  }

  private maybeResume(): void {
    if (!this.paused || this.committing || (this.holds[this.reading] ?? 0) > 0) return;
    if (this.toDirect && this.holds.some((n) => n > 0)) return;
    this.paused = false;
    if (this.closed || this.settled) return;
    this.armBody();
    this.socket?.resume();
  }

  private pause(): void {
    this.paused = true;
    // The sink is holding us (a disk write, the bandwidth cap): not the server's silence.
    this.clearTimer();
  }

  /** The whole body is in: the socket goes, the sink is ended and resolves us once finished. */
  private complete(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    // Every byte is in: an abort now would only throw away what the sink is finishing (as undici).
    this.request.signal?.removeEventListener("abort", this.onAbort);
    this.socket?.destroy();
    this.sink?.end();
  }

  private onEnd(): void {
    if (this.settled || this.closed) return;
    const framing = this.framing;
    if (framing?.kind === "close") return this.complete();
    this.fail(
      new Http1Error(
        "UND_ERR_SOCKET",
        framing === null
          ? "other side closed before the response head"
          : framing.kind === "length"
            ? `other side closed with ${framing.left} bytes of the body to come`
            : "other side closed inside a chunked body",
      ),
    );
  }

  private succeed(): void {
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.resolve();
  }

  /** The first failure wins: the socket goes, the sink is destroyed with it, the promise rejects. */
  private fail(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.closed = true;
    this.cleanup();
    const sink = this.sink;
    // A sink that failed first (a full disk) is the cause, whatever the socket did after it.
    const cause: unknown = sink?.errored ?? error;
    if (sink !== null && !sink.destroyed && !sink.writableEnded)
      sink.destroy(cause instanceof Error ? cause : new Error(String(cause)));
    this.reject(cause);
  }

  private cleanup(): void {
    this.clearTimer();
    this.request.signal?.removeEventListener("abort", this.onAbort);
    this.socket?.destroy();
  }

  private arm(ms: number, code: string, message: string): void {
    this.clearTimer();
    if (!(ms > 0)) return;
    this.timer = setTimeout(() => this.fail(new Http1Error(code, message)), ms);
    this.timer.unref();
  }

  private armBody(): void {
    this.arm(this.request.bodyTimeoutMs, "UND_ERR_BODY_TIMEOUT", "Body Timeout Error");
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * One header (or trailer) line as [name, value], or null: a leading space or tab is obsolete line
 * folding, a name with anything but token characters or a value with a control character (a bare
 * CR or LF) is refused.
 */
function headerLine(line: string): [string, string] | null {
  const colon = line.indexOf(":");
  const name = colon > 0 ? line.slice(0, colon) : "";
  const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, "");
  return TOKEN.test(name) && FIELD_VALUE.test(value) ? [name, value] : null;
}

/** Status line and header lines (without the final CRLF CRLF), strictly. */
export function parseHead(text: string): ResponseHead {
  const lines = text.split("\r\n");
  const status = STATUS_LINE.exec(lines[0] ?? "");
  if (status === null)
    throw new Http1Error(
      "HPE_INVALID_CONSTANT",
      `invalid status line ${JSON.stringify((lines[0] ?? "").slice(0, 80))}`,
    );
  // No prototype: a header named __proto__ or constructor is just a header.
  const headers = Object.create(null) as ResponseHeaders;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const field = headerLine(line);
    if (field === null)
      throw new Http1Error(
        "HPE_INVALID_HEADER_TOKEN",
        `invalid header line ${JSON.stringify(line.slice(0, 80))}`,
      );
    const [name, value] = field;
    const key = name.toLowerCase();
    const before = headers[key];
    headers[key] =
      before === undefined ? value : Array.isArray(before) ? [...before, value] : [before, value];
  }
  return { statusCode: Number(status[1]), headers };
}

/** How the body ends: RFC 9112 6.3, strictly. */
export function framingOf(head: ResponseHead): Framing {
  const { statusCode, headers } = head;
  if (statusCode === 204 || statusCode === 304) return { kind: "none" };
  const te = headers["transfer-encoding"];
  const cl = headers["content-length"];
  if (te !== undefined) {
    if (cl !== undefined)
      throw new Http1Error("HPE_UNEXPECTED_CONTENT_LENGTH", "both Transfer-Encoding and Content-Length");
    if (Array.isArray(te) || te.toLowerCase() !== "chunked")
      throw new Http1Error(
        "HPE_INVALID_TRANSFER_ENCODING",
        `unsupported Transfer-Encoding ${JSON.stringify(te)}`,
      );
    return { kind: "chunked", state: "size", left: 0, line: "", trailers: 0 };
  }
  if (cl !== undefined) {
    const values = (Array.isArray(cl) ? cl : [cl]).flatMap((v) => v.split(",").map((p) => p.trim()));
    const first = values[0] as string;
    if (!values.every((v) => v === first))
      throw new Http1Error(
        "HPE_UNEXPECTED_CONTENT_LENGTH",
        `conflicting Content-Length ${JSON.stringify(cl)}`,
      );
    const length = /^\d{1,16}$/.test(first) ? Number(first) : Number.NaN;
    if (!Number.isSafeInteger(length))
      throw new Http1Error("HPE_INVALID_CONTENT_LENGTH", `invalid Content-Length ${JSON.stringify(first)}`);
    return length === 0 ? { kind: "none" } : { kind: "length", left: length };
  }
  return { kind: "close" };
}
