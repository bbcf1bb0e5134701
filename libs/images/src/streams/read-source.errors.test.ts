// Every way a source can be broken ends in a SourceError that names the file and the problem.
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startLoopbackServer } from "../../../../test/fixtures/streams/loopback-server";
import type { LoopbackServer, Route } from "../../../../test/fixtures/streams/loopback-server";
import { createFetcher } from "./fetcher";
import { readSource } from "./read-source";
import type { ReadSourceOptions } from "./read-source";
import { SourceError } from "./source-error";

const PRODUCT_FILE = "streams/v1/com.example:download.json";
const PRODUCT_ID = "com.example:boot:24.04:amd64:ga-24.04";
const SHA = "a".repeat(64);

function indexDocument(path = PRODUCT_FILE): string {
  return JSON.stringify({
    format: "index:1.0",
    index: {
      "com.example:download": { datatype: "image-ids", format: "products:1.0", path, products: [PRODUCT_ID] },
    },
  });
}

function productsDocument(product: Record<string, unknown> = {}): string {
  return JSON.stringify({
    format: "products:1.0",
    content_id: "com.example:download",
    products: {
      [PRODUCT_ID]: {
        os: "ubuntu",
        release: "noble",
        arch: "amd64",
        release_title: "24.04 LTS",
        versions: {
          "20250101": {
            items: {
              "boot-kernel": { ftype: "boot-kernel", path: "noble/boot-kernel", sha256: SHA, size: 10 },
            },
          },
        },
        ...product,
      },
    },
  });
}

let server: LoopbackServer;

function serve(routes: Record<string, Route>): void {
  server.routes.clear();
  for (const [path, route] of Object.entries(routes)) server.routes.set(path, route);
}

async function sourceError(options: Partial<ReadSourceOptions> = {}): Promise<SourceError> {
  try {
    await readSource({ url: server.url, ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(SourceError);
    expect((error as SourceError).code).toBe("source-error");
    return error as SourceError;
  }
  throw new Error("readSource resolved; a SourceError was expected");
}

beforeAll(async () => {
  server = await startLoopbackServer();
});
afterAll(async () => {
  await server.close();
});

describe("readSource refuses a broken source with a SourceError", () => {
  it("reads the well-formed baseline (so each case below breaks one thing)", async () => {
    serve({ "streams/v1/index.json": indexDocument(), [PRODUCT_FILE]: productsDocument() });
    const contents = await readSource({ url: server.url });
    expect(contents.images.map((i) => i.id)).toEqual(["ubuntu/noble/amd64"]);
  });

  it("malformed JSON in the index", async () => {
    serve({ "streams/v1/index.json": "{ not json" });
    const error = await sourceError();
    expect(error.message).toMatch(/streams\/v1\/index\.json: malformed JSON/);
  });

  it("malformed JSON in a product file", async () => {
    serve({ "streams/v1/index.json": indexDocument(), [PRODUCT_FILE]: '{"format": "products:1.0", ' });
    expect((await sourceError()).message).toMatch(/com\.example:download\.json: malformed JSON/);
  });

  it("the wrong format in the index and in a product file", async () => {
    serve({ "streams/v1/index.json": productsDocument() });
    expect((await sourceError()).message).toMatch(
      /index\.json: wrong format "products:1\.0", expected "index:1\.0"/,
    );
    serve({ "streams/v1/index.json": indexDocument(), [PRODUCT_FILE]: indexDocument() });
    expect((await sourceError()).message).toMatch(
      /download\.json: wrong format "index:1\.0", expected "products:1\.0"/,
    );
  });

  it("a product file that does not fit products:1.0", async () => {
    serve({
      "streams/v1/index.json": indexDocument(),
      [PRODUCT_FILE]: JSON.stringify({ format: "products:1.0", products: [] }),
    });
    expect((await sourceError()).message).toMatch(
      /download\.json: not a valid products:1\.0 document \(products:/,
    );
  });

  it("a product file the index names but the server lacks (404)", async () => {
    serve({ "streams/v1/index.json": indexDocument() });
    const error = await sourceError();
    expect(error.message).toBe(`${server.url}streams/v1/com.example:download.json: HTTP 404`);
  });

  it("HTTP 404 and 500 for the index", async () => {
    serve({});
    expect((await sourceError()).message).toBe(`${server.url}streams/v1/index.json: HTTP 404`);
    serve({ "streams/v1/index.json": { status: 500, body: "boom" } });
    expect((await sourceError()).message).toBe(`${server.url}streams/v1/index.json: HTTP 500`);
  });

  it("a server that never answers: timed out", async () => {
    serve({ "streams/v1/index.json": "hang" });
    const started = Date.now();
    const error = await sourceError({ fetcher: createFetcher({ idleTimeoutMs: 200 }) });
    expect(error.message).toBe(`${server.url}streams/v1/index.json: timed out: no response within 200 ms`);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("stops waiting when the caller aborts, with the caller's reason rather than a SourceError", async () => {
    serve({ "streams/v1/index.json": "hang" });
    const controller = new AbortController();
    const reading = readSource({ url: server.url, signal: controller.signal });
    setTimeout(() => controller.abort(new Error("import stopped")), 50);
    await expect(reading).rejects.toThrow("import stopped");
  });

  it("a connection refused", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const error = await sourceError({ url: `http://127.0.0.1:${port}/` });
    expect(error.message).toBe(`http://127.0.0.1:${port}/streams/v1/index.json: connection refused`);
  });

  it("a document over the size cap, announced or not", async () => {
    serve({ "streams/v1/index.json": indexDocument(), [PRODUCT_FILE]: productsDocument() });
    const error = await sourceError({ fetcher: createFetcher({ maxBytes: 100 }) });
    expect(error.message).toMatch(/index\.json: larger than the 100 B limit for a document$/);
    serve({ "streams/v1/index.json": { status: 200, body: indexDocument(), chunked: true } });
    const streamed = await sourceError({ fetcher: createFetcher({ maxBytes: 100 }) });
    expect(streamed.message).toMatch(/index\.json: larger than the 100 B limit for a document$/);
  });

  it("an item path that escapes the source", async () => {
    const versions = {
      "20250101": {
        items: { "boot-kernel": { ftype: "boot-kernel", path: "../../etc/passwd", sha256: SHA, size: 10 } },
      },
    };
    serve({ "streams/v1/index.json": indexDocument(), [PRODUCT_FILE]: productsDocument({ versions }) });
    expect((await sourceError()).message).toMatch(
      /download\.json: com\.example:boot:24\.04:amd64:ga-24\.04 version 20250101 item boot-kernel: path "\.\.\/\.\.\/etc\/passwd" escapes the source/,
    );
  });

  it("an index entry path that escapes the source or names another host", async () => {
    serve({ "streams/v1/index.json": indexDocument("../other/products.json") });
    expect((await sourceError()).message).toMatch(
      /index\.json: entry com\.example:download: path .* escapes the source/,
    );
    serve({ "streams/v1/index.json": indexDocument("http://evil.example/products.json") });
    expect((await sourceError()).message).toMatch(/escapes the source .*URL scheme/);
  });

  it("a product without versions", async () => {
    serve({ "streams/v1/index.json": indexDocument(), [PRODUCT_FILE]: productsDocument({ versions: {} }) });
    expect((await sourceError()).message).toMatch(
      /download\.json: product com\.example:boot:24\.04:amd64:ga-24\.04 has no versions/,
    );
    serve({
      "streams/v1/index.json": indexDocument(),
      [PRODUCT_FILE]: productsDocument({ versions: undefined }),
    });
    expect((await sourceError()).message).toMatch(/has no versions/);
  });

  it("an image file without a usable sha256 or size", async () => {
    const item = (fields: Record<string, unknown>) => ({
      versions: {
        "1": { items: { k: { ftype: "boot-kernel", path: "k", sha256: SHA, size: 1, ...fields } } },
      },
    });
    serve({
      "streams/v1/index.json": indexDocument(),
      [PRODUCT_FILE]: productsDocument(item({ sha256: "xyz" })),
    });
    expect((await sourceError()).message).toMatch(/item k: sha256 missing or not 64 hex digits/);
    serve({ "streams/v1/index.json": indexDocument(), [PRODUCT_FILE]: productsDocument(item({ size: -1 })) });
    expect((await sourceError()).message).toMatch(/item k: size missing or not a byte count/);
  });
});

describe("readSource from file://", () => {
  let dir: string;
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("names a missing index, and applies the size cap too", async () => {
    dir = await mkdtemp(join(tmpdir(), "bootstream-file-source-"));
    const url = pathToFileURL(`${dir}/`).href;
    await expect(readSource({ url })).rejects.toThrow(`${dir}/streams/v1/index.json: not found`);
    await mkdir(join(dir, "streams/v1"), { recursive: true });
    await writeFile(join(dir, "streams/v1/index.json"), indexDocument());
    await expect(readSource({ url, fetcher: createFetcher({ maxBytes: 10 }) })).rejects.toThrow(
      /larger than/,
    );
  });
});
