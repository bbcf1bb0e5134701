import { existsSync, readdirSync, statSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Dispatcher } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FaultServer, repeat } from "../../../../test/fixtures/fault-server";
import { createDownloadAgent } from "./agent";
import { ContentStore } from "./content-store";
import { downloadFile, type DownloadOptions } from "./download";
import { DownloadError, NoSpaceError, isAbortError } from "./errors";
import { LARGE_STAGING_BYTES } from "./partial-writer";
import { runPool } from "./pool";
import { payload, sha256, tempDir } from "./test-helpers";

const KiB = 1024;
const MiB = 1024 * KiB;

let root: string;
let store: ContentStore;
let server: FaultServer;
let agent: Dispatcher;
/** Which HTTP client the suite runs on: ours (http1.ts, the default for http:) or undici. */
let directHttp = true;

beforeEach(async () => {
  root = await tempDir();
  store = await ContentStore.open(root);
  server = await FaultServer.start();
  agent = createDownloadAgent({ connectTimeoutMs: 1000 });
});

afterEach(async () => {
  await agent.close();
  await server.close();
  await rm(root, { recursive: true, force: true });
});

/** Serves `content` at path and downloads it with test-sized timeouts and backoff. */
function fetchFile(
  path: string,
  content: Buffer,
  extra: Partial<DownloadOptions> = {},
): ReturnType<typeof downloadFile> {
  return downloadFile({
    store,
    url: server.url(path),
    sha256: sha256(content),
    size: content.length,
    dispatcher: agent,
    directHttp,
    retries: 3,
    backoff: { baseMs: 1, maxMs: 5 },
    idleTimeoutMs: 300,
    ...extra,
  });
}

async function failure(promise: Promise<unknown>): Promise<DownloadError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DownloadError);
  return err as DownloadError;
}

async function expectInstalled(content: Buffer): Promise<void> {
  const sha = sha256(content);
  expect(await store.list()).toEqual([sha]);
  expect((await readFile(store.pathOf(sha))).equals(content)).toBe(true);
  expect(await readdir(join(root, "partial"))).toEqual([]);
}

function partialSize(content: Buffer): number {
  const path = store.partialPath(sha256(content));
  return existsSync(path) ? statSync(path).size : -1;
}

describe.each([
  { client: "http1", direct: true },
  { client: "undici", direct: false },
])("downloadFile through $client", ({ direct }) => {
  beforeEach(() => {
    directHttp = direct;
  });
  it("downloads, verifies and installs atomically", async () => {
    const content = payload(3 * MiB);
    server.addFile("/f", content);
    const storeDir = join(root, "store");
    const seenDuringDownload: string[][] = [];
    let progress = 0;

    const result = await fetchFile("/f", content, {
      highWaterMark: 256 * KiB,
      syncEveryBytes: 512 * KiB,
      onProgress: (delta) => {
        progress += delta;
        if (progress < content.length)
          seenDuringDownload.push(readdirSync(storeDir, { recursive: true }) as string[]);
      },
    });

    expect(result).toEqual({
      sha256: sha256(content),
      bytesFetched: content.length,
      attempts: 1,
      resumedFrom: 0,
    });
    expect(progress).toBe(content.length);
    expect(seenDuringDownload.length).toBeGreaterThan(0);
    expect(seenDuringDownload.every((entries) => entries.length === 0)).toBe(true);
    await expectInstalled(content);
    expect(server.requests("/f")).toMatchObject([{ range: null, status: 200 }]);
  });

  it("is a no-op for a file already stored", async () => {
    const content = payload(1000);
    server.addFile("/f", content);
    await fetchFile("/f", content);
    let progress = 0;
    const again = await fetchFile("/f", content, { onProgress: (d) => (progress += d) });
    expect(again).toMatchObject({ attempts: 0, bytesFetched: 0 });
    expect(progress).toBe(1000);
    expect(server.requestCount("/f")).toBe(1);
  });

  it("resumes with Range and If-Range after the connection drops half-way", async () => {
    const content = payload(2 * MiB);
    server.addFile("/f", content);
    server.fault("/f", { kind: "close-after", bytes: MiB });

    const result = await fetchFile("/f", content);

    await expectInstalled(content);
    const [first, second] = server.requests("/f");
    expect(first).toMatchObject({ range: null, status: 200, bytesSent: MiB });
    expect(second?.range).toMatch(/^bytes=\d+-$/);
    expect(second).toMatchObject({ ifRange: server.etagOf("/f"), status: 206 });
    expect(server.requestCount("/f")).toBe(2);
    expect(result.attempts).toBe(2);
    expect(result.bytesFetched).toBeGreaterThanOrEqual(content.length);
    expect(result.bytesFetched).toBeLessThan(1.2 * content.length);
    expect(server.bytesSent("/f")).toBeLessThan(1.2 * content.length);
  });

  it("resumes with Last-Modified as the validator when there is no ETag", async () => {
    const content = payload(512 * KiB);
    server.addFile("/f", content, { validators: "last-modified" });
    server.fault("/f", { kind: "close-after", bytes: 100 * KiB });
    await fetchFile("/f", content);
    await expectInstalled(content);
    const second = server.requests("/f")[1];
    expect(second?.ifRange).toMatch(/GMT$/);
    expect(second?.status).toBe(206);
  });

  it("never installs a file whose sha does not match: retries once, then fails", async () => {
    const content = payload(256 * KiB);
    server.addFile("/f", content);
    server.fault("/f", { kind: "flip-byte", offset: 1234 }, { kind: "flip-byte", offset: 99_999 });

    const err = await failure(fetchFile("/f", content));

    expect(err.kind).toBe("integrity");
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(sha256(content));
    expect(err.message).toContain(server.url("/f"));
    expect(server.requestCount("/f")).toBe(2);
    expect(server.requests("/f").map((r) => r.range)).toEqual([null, null]);
    expect(await store.list()).toEqual([]);
    expect(await readdir(join(root, "partial"))).toEqual([]);
  });

  it("recovers from a single flipped byte by downloading again from zero", async () => {
    const content = payload(256 * KiB);
    server.addFile("/f", content);
    server.fault("/f", { kind: "flip-byte", offset: 7 });
    const result = await fetchFile("/f", content);
    await expectInstalled(content);
    expect(result).toMatchObject({ attempts: 2, bytesFetched: 2 * content.length });
  });

  it("retries 429 and then succeeds", async () => {
    const content = payload(10 * KiB);
    server.addFile("/f", content);
    server.fault("/f", ...repeat(2, { kind: "status", status: 429, headers: { "retry-after": "0" } }));
    const result = await fetchFile("/f", content);
    await expectInstalled(content);
    expect(result.attempts).toBe(3);
    expect(server.requests("/f").map((r) => r.status)).toEqual([429, 429, 200]);
  });

  it("waits as long as a small Retry-After says, instead of its own backoff", async () => {
    const content = payload(1000);
    server.addFile("/f", content);
    server.fault("/f", { kind: "status", status: 429, headers: { "retry-after": "1" } });
    const started = performance.now();
    await fetchFile("/f", content, { backoff: { baseMs: 60_000, maxMs: 60_000 } });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(5000);
    expect(server.requestCount("/f")).toBe(2);
  });

  it("fails at once when Retry-After is too long to hold a download slot", async () => {
    const content = payload(1000);
    server.addFile("/f", content);
    server.fault("/f", { kind: "status", status: 503, headers: { "retry-after": "3600" } });
    const err = await failure(fetchFile("/f", content));
    expect(err).toMatchObject({ kind: "http", status: 503, retryable: true });
    expect(err.message).toMatch(/retry in 3600 s/);
    expect(server.requestCount("/f")).toBe(1);
  });

  it("rides out a burst of 500s", async () => {
    const content = payload(10 * KiB);
    server.addFile("/f", content);
    server.fault("/f", ...repeat(3, { kind: "status", status: 500 }));
    const result = await fetchFile("/f", content, { retries: 3 });
    await expectInstalled(content);
    expect(result.attempts).toBe(4);
    expect(server.requestCount("/f")).toBe(4);
  });

  it("gives up after `retries` 500s", async () => {
    const content = payload(10 * KiB);
    server.addFile("/f", content);
    server.fault("/f", ...repeat(10, { kind: "status", status: 500 }));
    const err = await failure(fetchFile("/f", content, { retries: 2 }));
    expect(err).toMatchObject({ kind: "http", status: 500, retryable: true });
    expect(err.message).toMatch(/HTTP 500 .*gave up after 3 attempts/);
    expect(server.requestCount("/f")).toBe(3);
    expect(await store.list()).toEqual([]);
  });

  it("fails a 404 at once", async () => {
    const err = await failure(fetchFile("/missing", payload(100)));
    expect(err).toMatchObject({ kind: "http", status: 404, retryable: false });
    expect(err.message).toContain(server.url("/missing"));
    expect(err.message).toContain("404");
    expect(server.requestCount("/missing")).toBe(1);
  });

  it("times out on silence between chunks and resumes where the drip stopped", async () => {
    const content = payload(256 * KiB);
    server.addFile("/f", content);
    server.fault("/f", {
      kind: "drip",
      bytes: 64 * KiB,
      chunkBytes: 16 * KiB,
      intervalMs: 5,
      silenceMs: 3000,
    });
    const started = performance.now();

    const result = await fetchFile("/f", content, { idleTimeoutMs: 300 });

    expect(performance.now() - started).toBeLessThan(2000);
    await expectInstalled(content);
    expect(server.requests("/f").map((r) => r.range)).toEqual([null, `bytes=${64 * KiB}-`]);
    expect(result).toMatchObject({ attempts: 2, bytesFetched: content.length });
  });

  it("reports a timeout when silence outlasts the retries, keeping the partial", async () => {
    const content = payload(256 * KiB);
    server.addFile("/f", content);
    server.fault("/f", {
      kind: "drip",
      bytes: 32 * KiB,
      chunkBytes: 8 * KiB,
      intervalMs: 2,
      silenceMs: 3000,
    });
    const err = await failure(fetchFile("/f", content, { retries: 0, idleTimeoutMs: 200 }));
    expect(err).toMatchObject({ kind: "timeout", retryable: true });
    expect(err.message).toMatch(/no data for 200 ms/);
    expect(partialSize(content)).toBe(32 * KiB);
  });

  it("times out a server that never sends headers", async () => {
    const content = payload(1000);
    server.addFile("/f", content);
    server.fault("/f", { kind: "hang", ms: 3000 });
    const result = await fetchFile("/f", content, { idleTimeoutMs: 200 });
    await expectInstalled(content);
    expect(result.attempts).toBe(2);
  });

  it("starts from zero when the server ignores Range", async () => {
    const content = payload(MiB);
    server.addFile("/f", content, { ignoreRange: true });
    server.fault("/f", { kind: "close-after", bytes: 300 * KiB });
    const deltas: number[] = [];

    const result = await fetchFile("/f", content, { onProgress: (d) => deltas.push(d) });

    await expectInstalled(content);
    const [first, second] = server.requests("/f");
    expect(first?.status).toBe(200);
    expect(second).toMatchObject({ status: 200 });
    expect(second?.range).toMatch(/^bytes=\d+-$/);
    expect(result.attempts).toBe(2);
    expect(result.bytesFetched).toBeLessThanOrEqual(content.length + 300 * KiB);
    expect(deltas.some((d) => d < 0)).toBe(true);
    expect(deltas.reduce((a, b) => a + b, 0)).toBe(content.length);
  });

  it("discards the partial when a 206 is not the range it asked for", async () => {
    const content = payload(100 * KiB);
    server.addFile("/f", content);
    await writeFile(store.partialPath(sha256(content)), content.subarray(0, 1000));
    server.fault("/f", { kind: "shift-range", shift: 10 });
    const result = await fetchFile("/f", content);
    await expectInstalled(content);
    expect(server.requests("/f").map((r) => [r.range, r.status])).toEqual([
      ["bytes=1000-", 206],
      [null, 200],
    ]);
    expect(result).toMatchObject({ attempts: 2, resumedFrom: 0 });
  });

  it("retries a refused connection and then reports a network error", async () => {
    const closed = await FaultServer.start();
    const url = closed.url("/f");
    await closed.close();
    const content = payload(100);
    const err = await failure(
      downloadFile({
        store,
        url,
        sha256: sha256(content),
        size: content.length,
        dispatcher: agent,
        directHttp,
        retries: 2,
        backoff: { baseMs: 1, maxMs: 2 },
      }),
    );
    expect(err).toMatchObject({ kind: "network", retryable: true });
    expect(err.message).toMatch(/ECONNREFUSED.*gave up after 3 attempts/);
  });

  describe("when the file changes upstream between attempts", () => {
    const oldContent = payload(512 * KiB, 1);
    const newContent = payload(512 * KiB, 2);

    it("If-Range gets the new version whole, which installs when the sha is the new one", async () => {
      server.addFile("/f", oldContent);
      const oldEtag = server.etagOf("/f");
      server.fault("/f", { kind: "close-after", bytes: 200 * KiB }, { kind: "replace", content: newContent });

      const result = await fetchFile("/f", newContent);

      await expectInstalled(newContent);
      const second = server.requests("/f")[1];
      expect(second).toMatchObject({ ifRange: oldEtag, status: 200 });
      expect(second?.range).toMatch(/^bytes=\d+-$/);
      expect(result).toMatchObject({ attempts: 2, resumedFrom: 0 });
    });

    it("fails on integrity when the sha is the old one, installing nothing", async () => {
      server.addFile("/f", oldContent);
      server.fault("/f", { kind: "close-after", bytes: 200 * KiB }, { kind: "replace", content: newContent });

      const err = await failure(fetchFile("/f", oldContent));

      expect(err).toMatchObject({ kind: "integrity", retryable: false });
      expect(server.requests("/f").map((r) => r.status)).toEqual([200, 200, 200]);
      expect(await store.list()).toEqual([]);
      expect(await readdir(join(root, "partial"))).toEqual([]);
    });

    it("fails on integrity when the new version has another size", async () => {
      server.addFile("/f", payload(600 * KiB, 3));
      const err = await failure(fetchFile("/f", oldContent));
      expect(err.kind).toBe("integrity");
      expect(err.message).toMatch(/614400 bytes, expected 524288/);
      expect(server.requestCount("/f")).toBe(2);
      expect(await store.list()).toEqual([]);
    });
  });

  describe("abort", () => {
    it("stops at once, keeps the partial, and a later call resumes it", async () => {
      const content = payload(512 * KiB);
      server.addFile("/f", content);
      server.fault("/f", {
        kind: "drip",
        bytes: 256 * KiB,
        chunkBytes: 16 * KiB,
        intervalMs: 5,
        silenceMs: 5000,
      });
      const controller = new AbortController();
      let abortedAt = 0;
      let done = 0;

      const err = await failure(
        fetchFile("/f", content, {
          signal: controller.signal,
          idleTimeoutMs: 10_000,
          syncEveryBytes: 16 * KiB,
          onProgress: (d) => {
            done += d;
            if (done >= 64 * KiB && abortedAt === 0) {
              abortedAt = performance.now();
              controller.abort();
            }
          },
        }),
      );

      expect(performance.now() - abortedAt).toBeLessThan(200);
      expect(err.kind).toBe("aborted");
      expect(isAbortError(err)).toBe(true);
      const kept = partialSize(content);
      expect(kept).toBeGreaterThanOrEqual(64 * KiB);
      expect(kept).toBeLessThan(content.length);
      expect(existsSync(`${store.partialPath(sha256(content))}.json`)).toBe(true);

      const result = await fetchFile("/f", content);

      await expectInstalled(content);
      expect(result).toEqual({
        sha256: sha256(content),
        attempts: 1,
        resumedFrom: kept,
        bytesFetched: content.length - kept,
      });
      expect(server.requests("/f")[1]).toMatchObject({ range: `bytes=${kept}-`, status: 206 });
    });

    it("interrupts a backoff wait", async () => {
      const content = payload(1000);
      server.addFile("/f", content);
      server.fault("/f", { kind: "status", status: 503, headers: { "retry-after": "30" } });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const started = performance.now();
      const err = await failure(fetchFile("/f", content, { signal: controller.signal }));
      expect(err.kind).toBe("aborted");
      expect(performance.now() - started).toBeLessThan(1000);
    });

    it("makes no request when already aborted", async () => {
      const content = payload(1000);
      server.addFile("/f", content);
      const err = await failure(fetchFile("/f", content, { signal: AbortSignal.abort() }));
      expect(err.kind).toBe("aborted");
      expect(server.requestCount("/f")).toBe(0);
    });
  });

  describe("existing partials", () => {
    it("restarts from zero on 416", async () => {
      const content = payload(100 * KiB);
      server.addFile("/f", content);
      await writeFile(store.partialPath(sha256(content)), content.subarray(0, 1000));
      server.fault("/f", {
        kind: "status",
        status: 416,
        headers: { "content-range": `bytes */${content.length}` },
      });

      const result = await fetchFile("/f", content);

      await expectInstalled(content);
      expect(server.requests("/f").map((r) => [r.range, r.status])).toEqual([
        ["bytes=1000-", 416],
        [null, 200],
      ]);
      expect(result).toMatchObject({ attempts: 2, resumedFrom: 0, bytesFetched: content.length });
    });

    it("installs a complete partial that verifies, without a request", async () => {
      const content = payload(100 * KiB);
      server.addFile("/f", content);
      await writeFile(store.partialPath(sha256(content)), content);
      const result = await fetchFile("/f", content);
      await expectInstalled(content);
      expect(result).toMatchObject({ attempts: 0, resumedFrom: content.length, bytesFetched: 0 });
      expect(server.requestCount("/f")).toBe(0);
    });

    it("re-downloads a complete partial that does not verify", async () => {
      const content = payload(100 * KiB);
      server.addFile("/f", content);
      await writeFile(store.partialPath(sha256(content)), payload(100 * KiB, 7));
      const result = await fetchFile("/f", content);
      await expectInstalled(content);
      expect(result).toMatchObject({ attempts: 1, resumedFrom: 0 });
      expect(server.requests("/f")[0]?.range).toBeNull();
    });

    it("discards a partial bigger than the file", async () => {
      const content = payload(10 * KiB);
      server.addFile("/f", content);
      await writeFile(store.partialPath(sha256(content)), payload(20 * KiB));
      await fetchFile("/f", content);
      await expectInstalled(content);
      expect(server.requests("/f").map((r) => r.range)).toEqual([null]);
    });

    it("does not send If-Range with a validator recorded for another URL", async () => {
      const content = payload(10 * KiB);
      server.addFile("/f", content);
      const sha = sha256(content);
      await writeFile(store.partialPath(sha), content.subarray(0, 4000));
      await store.writePartialMeta(sha, { url: "http://elsewhere/f", etag: '"other"', lastModified: null });
      const result = await fetchFile("/f", content);
      await expectInstalled(content);
      expect(server.requests("/f")[0]).toMatchObject({ range: "bytes=4000-", ifRange: null, status: 206 });
      expect(result.resumedFrom).toBe(4000);
    });
  });

  it("fails with NoSpaceError before fetching when the disk is too full", async () => {
    const content = payload(100 * KiB);
    server.addFile("/f", content);
    const err = await failure(
      fetchFile("/f", content, { freeBytes: async () => 50_000, freeSpaceMarginBytes: 1000 }),
    );
    expect(err).toBeInstanceOf(NoSpaceError);
    expect(err).toMatchObject({
      kind: "no-space",
      retryable: false,
      neededBytes: 103_400,
      freeBytes: 50_000,
    });
    expect(err.message).toMatch(/need .*103400 bytes.*50000 bytes\) free/);
    expect(server.requestCount("/f")).toBe(0);
  });

  it("counts only the bytes still missing against free space", async () => {
    const content = payload(100 * KiB);
    server.addFile("/f", content);
    await writeFile(store.partialPath(sha256(content)), content.subarray(0, 90 * KiB));
    await fetchFile("/f", content, { freeBytes: async () => 10 * KiB, freeSpaceMarginBytes: 0 });
    await expectInstalled(content);
  });

  it("sends the caller's headers but keeps Range to itself", async () => {
    const content = payload(1000);
    server.addFile("/f", content);
    await fetchFile("/f", content, { headers: { Authorization: "Bearer s3cret", Range: "bytes=0-10" } });
    const [request] = server.requests("/f");
    expect(request?.headers.authorization).toBe("Bearer s3cret");
    expect(request?.range).toBeNull();
  });

  it("fetches a file once when two callers want it at the same time", async () => {
    const content = payload(256 * KiB);
    server.addFile("/f", content);
    const [a, b] = await Promise.all([fetchFile("/f", content), fetchFile("/f", content)]);
    expect(server.requestCount("/f")).toBe(1);
    expect([a.attempts, b.attempts].sort()).toEqual([0, 1]);
    await expectInstalled(content);
  });

  it("stages through the large buffer too, resuming an unaligned .partial", async () => {
    const content = payload(5 * MiB + 123, 4);
    server.addFile("/f", content);
    server.fault("/f", { kind: "close-after", bytes: 3 * MiB + 77 });
    const result = await fetchFile("/f", content, { stagingBytes: LARGE_STAGING_BYTES });
    await expectInstalled(content);
    expect(server.requests("/f").map((r) => r.range)).toEqual([null, `bytes=${3 * MiB + 77}-`]);
    expect(result.bytesFetched).toBe(content.length);
  });

  it("refuses a staging size other than the two it has pools for, before any request", async () => {
    const content = payload(10);
    server.addFile("/f", content);
    await expect(fetchFile("/f", content, { stagingBytes: 1000 })).rejects.toThrow(RangeError);
    expect(server.requestCount("/f")).toBe(0);
  });

  it("rejects a malformed sha before any request", async () => {
    server.addFile("/f", payload(10));
    await expect(
      downloadFile({
        store,
        url: server.url("/f"),
        sha256: "../../x",
        size: 10,
        dispatcher: agent,
        directHttp,
      }),
    ).rejects.toThrow(TypeError);
    expect(server.requestCount("/f")).toBe(0);
  });

  it("runs a pool of downloads within the concurrency limit", async () => {
    const files = Array.from({ length: 6 }, (_, i) => payload(64 * KiB, i + 10));
    let active = 0;
    let peak = 0;
    files.forEach((content, i) => {
      server.addFile(`/p${i}`, content);
      server.fault(`/p${i}`, {
        kind: "drip",
        bytes: content.length,
        chunkBytes: 16 * KiB,
        intervalMs: 5,
        silenceMs: 0,
      });
    });
    const results = await runPool(files, 2, async (content, i) => {
      active++;
      peak = Math.max(peak, active);
      try {
        return await fetchFile(`/p${i}`, content);
      } finally {
        active--;
      }
    });
    expect(peak).toBe(2);
    expect(results.every((r) => r.status === "fulfilled")).toBe(true);
    expect((await store.list()).length).toBe(6);
  });
});
