import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { rm } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDownloadAgent } from "./agent";
import { ContentStore } from "./content-store";
import { downloadFile } from "./download";
import { DownloadError } from "./errors";
import { payload, sha256, tempDir } from "./test-helpers";

// A hostile payload server: bodies that trickle or never end. Each response counts its requests.
let root: string;
let store: ContentStore;
let server: Server;
let base: string;
let requests = 0;
const open = new Set<ServerResponse>();

function trickle(res: ServerResponse, chunk: Buffer, everyMs: number, limit = Infinity): void {
  let sent = 0;
  const timer = setInterval(() => {
    if (res.destroyed || sent >= limit) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    sent += chunk.length;
    res.write(chunk);
  }, everyMs);
  res.on("close", () => clearInterval(timer));
}

const content = payload(64 * 1024);

beforeEach(async () => {
  root = await tempDir();
  store = await ContentStore.open(root);
  requests = 0;
  server = createServer((req, res) => {
    requests++;
    open.add(res);
    res.on("close", () => open.delete(res));
    if (req.url === "/slow") {
      // 16 bytes every 20 ms: well under the test's minimum rate, yet never silent long enough to idle out.
      res.writeHead(200, { "content-length": String(content.length) });
      trickle(res, content.subarray(0, 16), 20);
    } else if (req.url === "/short-ignores-range" || req.url === "/short-then-416") {
      // Every response ends 4 KiB short, without a Content-Length to say so. One server answers a
      // Range with the whole file again (a 200 from byte 0), the other with a 416.
      if (req.headers.range && req.url === "/short-then-416") {
        res.writeHead(416).end();
        return;
      }
      res.writeHead(200);
      res.end(content.subarray(0, content.length - 4096));
    } else if (req.url === "/silent") {
      // Accepts, reads the request, never answers.
    } else if (req.url === "/endless-error") {
      res.writeHead(500, { "content-type": "text/plain" });
      const chunk = Buffer.alloc(16 * 1024, "x");
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      pump();
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const res of open) res.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(root, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<DownloadError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DownloadError);
  return err as DownloadError;
}

describe.each([
  { client: "http1", direct: true },
  { client: "undici", direct: false },
])("downloadFile through $client against a hostile source", ({ direct }) => {
  it("cuts a transfer under the minimum rate and gives up after the retries, progress or not", async () => {
    const agent = createDownloadAgent();
    try {
      const err = await failure(
        downloadFile({
          store,
          directHttp: direct,
          url: `${base}/slow`,
          sha256: sha256(content),
          size: content.length,
          dispatcher: agent,
          retries: 2,
          backoff: { baseMs: 1, maxMs: 5 },
          idleTimeoutMs: 5_000,
          minRate: { bytesPerSecond: 64 * 1024, windowMs: 200 },
        }),
      );
      expect(err.kind).toBe("timeout");
      expect(err.message).toMatch(/slower than 64(\.0)? KiB\/s over 0.2 s/);
      expect(err.message).toMatch(/gave up after 3 attempts/);
      expect(requests).toBe(3);
    } finally {
      await agent.close();
    }
  });

  it("reads at most 64 KiB of an error body, then cuts the connection and retries", async () => {
    const agent = createDownloadAgent();
    try {
      const err = await failure(
        downloadFile({
          store,
          directHttp: direct,
          url: `${base}/endless-error`,
          sha256: sha256(content),
          size: content.length,
          dispatcher: agent,
          retries: 1,
          backoff: { baseMs: 1, maxMs: 5 },
          idleTimeoutMs: 5_000,
        }),
      );
      expect(err).toMatchObject({ kind: "http", status: 500 });
      expect(err.message).toMatch(/gave up after 2 attempts/);
      expect(err.message).not.toMatch(/xxxx/);
      expect(requests).toBe(2);
    } finally {
      await agent.close();
    }
  });

  it.each(["/short-ignores-range", "/short-then-416"])(
    "gives up on %s, whose responses always end at the same byte: the same bytes again earn no retries",
    async (path) => {
      const agent = createDownloadAgent();
      try {
        const err = await failure(
          downloadFile({
            store,
            directHttp: direct,
            url: `${base}${path}`,
            sha256: sha256(content),
            size: content.length,
            dispatcher: agent,
            retries: 3,
            backoff: { baseMs: 1, maxMs: 5 },
            idleTimeoutMs: 5_000,
          }),
        );
        expect(err.message).toMatch(/gave up after \d+ attempts/);
        // The first response brought bytes (retries earned back once); after that none did.
        expect(requests).toBeLessThanOrEqual(2 * (3 + 2));
      } finally {
        await agent.close();
      }
    },
  );

  it("says a server that never sent headers did not answer, rather than that it was slow", async () => {
    const agent = createDownloadAgent();
    try {
      const err = await failure(
        downloadFile({
          store,
          directHttp: direct,
          url: `${base}/silent`,
          sha256: sha256(content),
          size: content.length,
          dispatcher: agent,
          retries: 0,
          idleTimeoutMs: 5_000,
          minRate: { bytesPerSecond: 1024, windowMs: 200 },
        }),
      );
      expect(err.kind).toBe("timeout");
      expect(err.message).toMatch(
        /no response within 0\.2 s \(the server accepted the connection but sent no headers\)/,
      );
    } finally {
      await agent.close();
    }
  });
});
