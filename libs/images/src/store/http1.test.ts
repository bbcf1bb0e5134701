import { createHash } from "node:crypto";
import { once } from "node:events";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import {
  framingOf,
  http1Eligible,
  http1Get,
  MAX_HEAD_BYTES,
  parseHead,
  READ_BUFFER_BYTES,
  type Http1Request,
  type ResponseHead,
} from "./http1";
import { BandwidthLimiter } from "./bandwidth";
import { LARGE_STAGING_BYTES, PartialWriter, STAGING_BYTES } from "./partial-writer";
import { payload, sha256, tempDir } from "./test-helpers";

describe("parseHead", () => {
  it.each([
    ["HTTP/1.1 200 OK", 200, {}],
    ["HTTP/1.0 404 Not Found", 404, {}],
    ["HTTP/1.1 204", 204, {}],
    ["HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10", 206, { "content-range": "bytes 5-9/10" }],
    ['HTTP/1.1 200 OK\r\nETag:   "x"  ', 200, { etag: '"x"' }],
    ["HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nset-cookie: b", 200, { "set-cookie": ["a", "b"] }],
    ["HTTP/1.1 200 OK\r\nX-Empty:", 200, { "x-empty": "" }],
    ["HTTP/1.1 200 OK\r\n__proto__: x\r\nconstructor: y", 200, { ["__proto__"]: "x", constructor: "y" }],
  ])("reads %j", (text, status, headers) => {
    expect(parseHead(text)).toEqual({ statusCode: status, headers });
  });

  it.each([
    ["HTTP/2 200", "HPE_INVALID_CONSTANT"],
    ["HTTP/1.1 20 OK", "HPE_INVALID_CONSTANT"],
    ["HTTP/1.1 099 Low", "HPE_INVALID_CONSTANT"],
    ["ICY 200 OK", "HPE_INVALID_CONSTANT"],
    ["HTTP/1.1 200 OK\r\n folded: value", "HPE_INVALID_HEADER_TOKEN"],
    ["HTTP/1.1 200 OK\r\nBad Name: x", "HPE_INVALID_HEADER_TOKEN"],
    ["HTTP/1.1 200 OK\r\nno-colon", "HPE_INVALID_HEADER_TOKEN"],
    ["HTTP/1.1 200 OK\r\n: no-name", "HPE_INVALID_HEADER_TOKEN"],
    ["HTTP/1.1 200 OK\r\nX: a\nY: b", "HPE_INVALID_HEADER_TOKEN"],
    ["HTTP/1.1 200 OK\r\nX: a\rb", "HPE_INVALID_HEADER_TOKEN"],
    ["HTTP/1.1 200 OK\r\nX: a\u0000b", "HPE_INVALID_HEADER_TOKEN"],
  ])("refuses %j with %s", (text, code) => {
    expect(() => parseHead(text)).toThrow(expect.objectContaining({ code }));
  });
});

describe("framingOf", () => {
  const head = (statusCode: number, headers: Record<string, string | string[]>): ResponseHead => ({
    statusCode,
    headers,
  });
  it.each([
    [head(200, { "content-length": "10" }), { kind: "length", left: 10 }],
    [head(200, { "content-length": "0" }), { kind: "none" }],
    [head(200, { "content-length": ["10", "10"] }), { kind: "length", left: 10 }],
    [head(200, { "content-length": "10, 10" }), { kind: "length", left: 10 }],
    [head(204, { "content-length": "10" }), { kind: "none" }],
    [head(304, {}), { kind: "none" }],
    [head(200, {}), { kind: "close" }],
    [
      head(500, { "transfer-encoding": "Chunked" }),
      { kind: "chunked", state: "size", left: 0, line: "", trailers: 0 },
    ],
  ])("%j frames as %j", (h, framing) => {
    expect(framingOf(h)).toEqual(framing);
  });

  it.each([
    [head(200, { "content-length": ["10", "11"] }), "HPE_UNEXPECTED_CONTENT_LENGTH"],
    [head(200, { "content-length": "10, 11" }), "HPE_UNEXPECTED_CONTENT_LENGTH"],
    [head(200, { "content-length": "-1" }), "HPE_INVALID_CONTENT_LENGTH"],
    [head(200, { "content-length": "1e3" }), "HPE_INVALID_CONTENT_LENGTH"],
    [head(200, { "content-length": "99999999999999999" }), "HPE_INVALID_CONTENT_LENGTH"],
    [head(200, { "content-length": "" }), "HPE_INVALID_CONTENT_LENGTH"],
    [head(200, { "transfer-encoding": "gzip, chunked" }), "HPE_INVALID_TRANSFER_ENCODING"],
    [head(200, { "transfer-encoding": ["chunked", "chunked"] }), "HPE_INVALID_TRANSFER_ENCODING"],
    [head(200, { "transfer-encoding": "chunked", "content-length": "5" }), "HPE_UNEXPECTED_CONTENT_LENGTH"],
  ])("%j is refused with %s", (h, code) => {
    expect(() => framingOf(h)).toThrow(expect.objectContaining({ code }));
  });
});

describe("http1Eligible", () => {
  it.each([
    ["http://region:5240/files/x", true],
    ["http://[::1]:8080/x", true],
    ["https://images.maas.io/x", false],
    ["http://user:pass@mirror/x", false],
    ["file:///x", false],
  ])("%s: %s", (url, eligible) => {
    expect(http1Eligible(new URL(url))).toBe(eligible);
  });
});

// A raw TCP server: each test scripts the exact bytes (and pauses) of its response.
let server: Server | null = null;
const sockets = new Set<Socket>();

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  if (server !== null) await new Promise<void>((resolve) => server?.close(() => resolve()));
  server = null;
});

/** Starts a server that hands each connection, with the request head it sent, to `respond`. */
async function rawServer(respond: (socket: Socket, request: string) => void): Promise<URL> {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    let request = "";
    const onData = (data: Buffer): void => {
      request += data.toString("latin1");
      if (!request.includes("\r\n\r\n")) return;
      socket.off("data", onData);
      respond(socket, request);
    };
    socket.on("data", onData);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/files/a?x=1`);
}

const REQUEST: Http1Request = {
  headers: { authorization: "Bearer t", range: "bytes=5-" },
  connectTimeoutMs: 1000,
  headersTimeoutMs: 1000,
  bodyTimeoutMs: 1000,
};

/** A sink that keeps what it is given; `hold` ms before calling back each chunk (a slow disk). */
function collector(hold = 0): { sink: Writable; body: () => Buffer; chunks: number[] } {
  const parts: Buffer[] = [];
  const chunks: number[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(Buffer.from(chunk)); // copied: the buffer is the client's to reuse once we call back
      chunks.push(chunk.length);
      if (hold > 0) setTimeout(callback, hold);
      else callback();
    },
  });
  return { sink, body: () => Buffer.concat(parts), chunks };
}

async function get(
  url: URL,
  request: Partial<Http1Request> = {},
  hold = 0,
): Promise<{ head: ResponseHead | null; body: Buffer; chunks: number[]; error: unknown }> {
  let head: ResponseHead | null = null;
  const c = collector(hold);
  const error = await http1Get(url, { ...REQUEST, ...request }, (h) => {
    head = h;
    return c.sink;
  }).then(
    () => null,
    (err: unknown) => err,
  );
  return { head, body: c.body(), chunks: c.chunks, error };
}

describe("http1Get", () => {
  it("sends one GET with our headers and reads a Content-Length body", async () => {
    const body = payload(3 * READ_BUFFER_BYTES + 12345);
    let seen = "";
    const url = await rawServer((socket, request) => {
      seen = request;
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nETag: "v1"\r\n\r\n`);
      socket.end(body);
    });
    const result = await get(url);
    expect(result.error).toBeNull();
    expect(result.head).toEqual({
      statusCode: 200,
      headers: { "content-length": String(body.length), etag: '"v1"' },
    });
    expect(result.body.equals(body)).toBe(true);
    expect(seen).toBe(
      `GET /files/a?x=1 HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\n` +
        "authorization: Bearer t\r\nrange: bytes=5-\r\n\r\n",
    );
  });

  it("takes reads far larger than libuv's 64 KiB when the bytes are there", async () => {
    const body = payload(8 * READ_BUFFER_BYTES);
    const url = await rawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      // Let the kernel queue fill before the client reads: it holds the first chunk.
      setTimeout(() => socket.end(body), 50);
    });
    const result = await get(url, {}, 20);
    expect(result.body.equals(body)).toBe(true);
    expect(Math.max(...result.chunks)).toBeGreaterThan(64 * 1024);
    expect(Math.max(...result.chunks)).toBeLessThanOrEqual(READ_BUFFER_BYTES);
  });

  it("never reuses a buffer the sink still holds: a slow sink gets every byte right", async () => {
    const body = payload(4 * READ_BUFFER_BYTES + 7, 9);
    const url = await rawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      socket.end(body);
    });
    const result = await get(url, {}, 15);
    expect(result.error).toBeNull();
    expect(result.body.equals(body)).toBe(true);
  });

  it("does not count time the sink holds it as the server's silence", async () => {
    const body = payload(2 * READ_BUFFER_BYTES);
    const url = await rawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      socket.end(body);
    });
    // Each chunk is held 3x the body timeout: a timer running meanwhile would cut the response.
    const result = await get(url, { bodyTimeoutMs: 100 }, 300);
    expect(result.error).toBeNull();
    expect(result.body.equals(body)).toBe(true);
  });

  it("decodes a chunked body split anywhere, with extensions and trailers", async () => {
    const parts = [payload(10), payload(70_000, 2), payload(3, 3)];
    const wire = Buffer.concat([
      ...parts.flatMap((p, i) => [
        Buffer.from(`${p.length.toString(16)}${i === 1 ? ";ext=1" : ""}\r\n`),
        p,
        Buffer.from("\r\n"),
      ]),
      Buffer.from("0\r\nX-Trailer: y\r\n\r\n"),
    ]);
    const url = await rawServer((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      // One byte at a time through the framing, then the rest: every state sees a split.
      let at = 0;
      const step = (): void => {
        if (at >= 40) return void socket.end(wire.subarray(at));
        socket.write(wire.subarray(at, at + 1));
        at++;
        setImmediate(step);
      };
      step();
    });
    const result = await get(url);
    expect(result.error).toBeNull();
    expect(result.body.equals(Buffer.concat(parts))).toBe(true);
  });

  it("reads a body that ends with the connection when there is no length", async () => {
    const body = payload(100_000);
    const url = await rawServer((socket) => {
      socket.write("HTTP/1.0 200 OK\r\n\r\n");
      socket.end(body);
    });
    const result = await get(url);
    expect(result.error).toBeNull();
    expect(result.body.equals(body)).toBe(true);
  });

  it("skips informational responses", async () => {
    const url = await rawServer((socket) => {
      socket.end(
        "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
      );
    });
    const result = await get(url);
    expect(result.head?.statusCode).toBe(200);
    expect(result.body.toString()).toBe("hi");
  });

  it("hands a body-less status to the sink and ends it", async () => {
    const url = await rawServer((socket) => socket.write("HTTP/1.1 204 No Content\r\n\r\n"));
    const result = await get(url);
    expect(result.error).toBeNull();
    expect(result.head?.statusCode).toBe(204);
    expect(result.body.length).toBe(0);
  });

  it.each([
    ["a connection closed before the head", (s: Socket) => s.end("HTTP/1.1 200 OK\r\n"), "UND_ERR_SOCKET"],
    [
      "a body cut short of its Content-Length",
      (s: Socket) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
      "UND_ERR_SOCKET",
    ],
    [
      "a chunked body cut before its last chunk",
      (s: Socket) => s.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
      "UND_ERR_SOCKET",
    ],
    [
      "a bad chunk size",
      (s: Socket) => s.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
      "HPE_INVALID_CHUNK_SIZE",
    ],
    [
      "chunk data longer than its size",
      (s: Socket) => s.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"),
      "HPE_STRICT",
    ],
    [
      "a bare LF in the chunk framing",
      (s: Socket) => s.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n"),
      "HPE_LF_EXPECTED",
    ],
    [
      "an endless chunk-size line",
      (s: Socket) => s.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${"x".repeat(5000)}`),
      "HPE_CHUNK_EXTENSIONS_OVERFLOW",
    ],
    [
      "a head larger than the bound",
      (s: Socket) => s.end(`HTTP/1.1 200 OK\r\nX: ${"y".repeat(MAX_HEAD_BYTES)}\r\n\r\n`),
      "HPE_HEADER_OVERFLOW",
    ],
    ["a 101", (s: Socket) => s.end("HTTP/1.1 101 Switching Protocols\r\n\r\n"), "HPE_INVALID_CONSTANT"],
    [
      "a trailer that is not a field",
      (s: Socket) => s.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a field\r\n\r\n"),
      "HPE_INVALID_HEADER_TOKEN",
    ],
    [
      "endless trailers",
      (s: Socket) =>
        s.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${"x: y\r\n".repeat(100)}\r\n`),
      "HPE_HEADER_OVERFLOW",
    ],
    ["not HTTP at all", (s: Socket) => s.end("SSH-2.0-OpenSSH_9.2\r\n\r\n"), "HPE_INVALID_CONSTANT"],
  ])("fails on %s (%s)", async (_what, respond, code) => {
    const url = await rawServer(respond);
    const result = await get(url);
    expect(result.error).toMatchObject({ code });
  });

  it("resolves when the sink finishes on its own before the body is in, as undici does", async () => {
    const url = await rawServer((s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    const sink = new Writable({
      write(_chunk, _encoding, callback) {
        callback();
        sink.end();
      },
    });
    await expect(http1Get(url, REQUEST, () => sink)).resolves.toBeUndefined();
  });

  it("leaves a sink that has every byte to finish when an abort comes meanwhile", async () => {
    const url = await rawServer((s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"));
    const controller = new AbortController();
    let finalised = false;
    const sink = new Writable({
      write: (_chunk, _encoding, callback) => callback(),
      final(callback) {
        controller.abort(new Error("late")); // the body is in; the sink is still finishing
        setImmediate(() => {
          finalised = true;
          callback();
        });
      },
    });
    await expect(
      http1Get(url, { ...REQUEST, signal: controller.signal }, () => sink),
    ).resolves.toBeUndefined();
    expect(finalised).toBe(true);
    expect(sink.errored).toBeNull();
  });

  it("gives what it had to the sink before a cut, then destroys the sink with the error", async () => {
    const url = await rawServer((s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    let destroyedWith: unknown = null;
    const c = collector();
    c.sink.on("error", (err) => (destroyedWith = err));
    const error = await http1Get(url, REQUEST, () => c.sink).catch((err: unknown) => err);
    expect(c.body().toString()).toBe("abc");
    expect(destroyedWith).toBe(error);
  });

  it("times out a server that sends no head", async () => {
    const url = await rawServer(() => undefined);
    const result = await get(url, { headersTimeoutMs: 100 });
    expect(result.error).toMatchObject({ code: "UND_ERR_HEADERS_TIMEOUT" });
    expect(result.head).toBeNull();
  });

  it("times out a body that goes silent", async () => {
    const url = await rawServer((s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    const result = await get(url, { bodyTimeoutMs: 100 });
    expect(result.error).toMatchObject({ code: "UND_ERR_BODY_TIMEOUT" });
    expect(result.body.toString()).toBe("abc");
  });

  it("rejects with the signal's reason on abort, mid-body", async () => {
    const url = await rawServer((s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
    const controller = new AbortController();
    const reason = new Error("stop");
    const sink = new Writable({
      write(_chunk, _encoding, callback) {
        callback();
        controller.abort(reason); // the first bytes are in: stop mid-body
      },
    });
    await expect(http1Get(url, { ...REQUEST, signal: controller.signal }, () => sink)).rejects.toBe(reason);
    expect(sink.destroyed).toBe(true);
  });

  it("rejects at once when the signal is already aborted, without connecting", async () => {
    let connected = false;
    const url = await rawServer(() => (connected = true));
    const controller = new AbortController();
    controller.abort(new Error("already"));
    await expect(
      http1Get(url, { ...REQUEST, signal: controller.signal }, () => collector().sink),
    ).rejects.toThrow("already");
    expect(connected).toBe(false);
  });

  it("passes a refused connection's errno through", async () => {
    const url = await rawServer(() => undefined);
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    server = null;
    const result = await get(url);
    expect(result.error).toMatchObject({ code: "ECONNREFUSED" });
  });

  it("rejects with the sink's own error, and stops reading", async () => {
    const body = payload(4 * READ_BUFFER_BYTES);
    const url = await rawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      socket.end(body);
    });
    const full = new Error("disk full");
    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback(full) });
    await expect(http1Get(url, REQUEST, () => sink)).rejects.toBe(full);
  });

  it("refuses a header value that would split the request, before connecting", () => {
    expect(() =>
      http1Get(
        new URL("http://127.0.0.1:1/"),
        { ...REQUEST, headers: { authorization: "a\r\nx: y" } },
        () => collector().sink,
      ),
    ).toThrow(TypeError);
  });
});

describe("http1Get into a PartialWriter (reads straight into its staging buffer)", () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir !== null) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  async function download(
    body: Buffer,
    respond: (socket: Socket, head: string) => void,
    options: { stagingBytes?: number; bandwidth?: BandwidthLimiter } = {},
  ): Promise<{ writer: PartialWriter; file: Buffer; digest: string; written: number }> {
    dir = await tempDir();
    const path = join(dir, "f.partial");
    const url = await rawServer((socket) =>
      respond(socket, `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`),
    );
    const hash = createHash("sha256");
    let written = 0;
    let writer: PartialWriter | null = null;
    await http1Get(url, REQUEST, () => {
      writer = new PartialWriter({
        path,
        offset: 0,
        limit: body.length,
        hash,
        highWaterMark: 64 * 1024,
        syncEveryBytes: 1024 * 1024,
        onWritten: (n) => (written += n),
        onOverflow: () => new Error("overflow"),
        ...options,
      });
      return writer;
    });
    const used = writer as unknown as PartialWriter;
    if (!used.closed) await once(used, "close");
    return { writer: used, file: await readFile(path), digest: hash.digest("hex"), written };
  }

  it("takes most of a large body without copying it, and every byte is right", async () => {
    const body = payload(5 * LARGE_STAGING_BYTES + 4097, 5);
    const { writer, file, digest, written } = await download(
      body,
      (socket, head) => {
        socket.write(head);
        socket.end(body);
      },
      { stagingBytes: LARGE_STAGING_BYTES },
    );
    expect(file.equals(body)).toBe(true);
    expect(digest).toBe(sha256(body));
    expect(written).toBe(body.length);
    expect(writer.received).toBe(body.length);
    expect(writer.committedBytes).toBeGreaterThan(body.length / 2);
  });

  it("keeps the bytes right when the slow-link flush moves staging between a reserve and its commit", async () => {
    // 5000 bytes every 150 ms: the 100 ms flush timer writes each whole 4 KiB block and moves the
    // rest of staging to the front while the next read is already reserved further on.
    const body = payload(6 * 5000 + 17, 6);
    const { writer, file, digest } = await download(body, (socket, head) => {
      socket.write(head);
      let at = 0;
      const drip = (): void => {
        const part = body.subarray(at, at + 5000);
        at += part.length;
        if (at >= body.length) return void socket.end(part);
        socket.write(part);
        setTimeout(drip, 150);
      };
      drip();
    });
    expect(file.equals(body)).toBe(true);
    expect(digest).toBe(sha256(body));
    // All but the bytes that came with the head and the read while the file was being opened.
    expect(writer.committedBytes).toBe(body.length - 2 * 5000);
  });

  it("keeps the bytes right under a bandwidth cap", async () => {
    const body = payload(3 * STAGING_BYTES + 5, 7);
    const cap = new BandwidthLimiter(8 * 1024 * 1024);
    const { writer, file, digest } = await download(
      body,
      (socket, head) => {
        socket.write(head);
        socket.end(body);
      },
      { bandwidth: cap },
    );
    expect(file.equals(body)).toBe(true);
    expect(digest).toBe(sha256(body));
    expect(writer.received).toBe(body.length);
  });
});
