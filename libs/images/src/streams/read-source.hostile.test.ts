// A hostile boot source: redirects into the region's own network, huge or crowded documents, bodies
// meant to be quoted back, names meant to escape a rack's tree. Each read ends bounded and says why.
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { gzipSync } from "node:zlib";
import { WarningList, readSource } from "./read-source";
import { SourceError } from "./source-error";

const SHA = "b".repeat(64);
const servers: Server[] = [];

async function serve(handler: RequestListener): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? "");
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, hits };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

function routes(
  table: Record<string, string | (() => [number, Record<string, string>, string])>,
): RequestListener {
  return (req, res) => {
    const route = table[req.url ?? ""];
    if (route === undefined) return void res.writeHead(404).end();
    if (typeof route === "string") return void res.writeHead(200).end(route);
    const [status, headers, body] = route();
    res.writeHead(status, headers).end(body);
  };
}

function product(version: string, release = "noble", arch = "amd64"): Record<string, unknown> {
  return {
    os: "ubuntu",
    release,
    arch,
    release_title: "24.04 LTS",
    versions: {
      [version]: {
        items: { "boot-kernel": { ftype: "boot-kernel", path: `${release}/k`, sha256: SHA, size: 10 } },
      },
    },
  };
}

function index(entries: Record<string, unknown>): string {
  return JSON.stringify({ format: "index:1.0", index: entries });
}

const imageEntry = { datatype: "image-ids", format: "products:1.0", path: "streams/v1/p.json" };

async function refusal(promise: Promise<unknown>): Promise<SourceError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SourceError);
  return error as SourceError;
}

describe("readSource against a hostile source", () => {
  it("refuses a redirect to another origin (the region's /metrics) and quotes nothing", async () => {
    const internal = await serve(routes({ "/metrics": "# HELP bootstream_images images\n" }));
    const source = await serve(
      routes({ "/streams/v1/index.json": () => [302, { location: `${internal.url}metrics` }, ""] }),
    );
    const error = await refusal(readSource({ url: source.url }));
    expect(error.message).toMatch(
      /index\.json: redirect refused: to another origin \(http:\/\/127\.0\.0\.1:\d+\)$/,
    );
    expect(internal.hits).toEqual([]);
  });

  it("follows a redirect within the source's origin", async () => {
    const source = await serve(
      routes({
        "/streams/v1/index.json": () => [301, { location: "/moved/index.json" }, ""],
        "/moved/index.json": index({}),
      }),
    );
    expect((await readSource({ url: source.url })).images).toEqual([]);
  });

  it("gives up after 5 redirects", async () => {
    const source = await serve((req, res) => {
      const n = Number(/\d+$/.exec(req.url ?? "")?.[0] ?? 0);
      res.writeHead(302, { location: `/hop/${n + 1}` }).end();
    });
    expect((await refusal(readSource({ url: source.url }))).message).toMatch(/more than 5 redirects/);
  });

  it("never quotes a body that is not JSON", async () => {
    const source = await serve(routes({ "/streams/v1/index.json": "# HELP secret_metric internal\n" }));
    const error = await refusal(readSource({ url: source.url }));
    expect(error.message).toMatch(/index\.json: malformed JSON/);
    expect(error.message).not.toMatch(/HELP|secret_metric/);
  });

  it("refuses an index over 1 MiB before parsing it", async () => {
    const padding = "x".repeat(1024 * 1024);
    const source = await serve(routes({ "/streams/v1/index.json": index({ pad: { datatype: padding } }) }));
    expect((await refusal(readSource({ url: source.url }))).message).toMatch(
      /index\.json: larger than the 1\.0 MiB limit for a document$/,
    );
  });

  it("refuses an index of more than 1,000 entries", async () => {
    const entries = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`e${i}`, {}]));
    const source = await serve(routes({ "/streams/v1/index.json": index(entries) }));
    expect((await refusal(readSource({ url: source.url }))).message).toMatch(
      /1001 entries, more than the 1000 an index may hold/,
    );
  });

  it("refuses a product file with more products than the limit", async () => {
    const products = Object.fromEntries(
      Array.from({ length: 6 }, (_, i) => [`p${i}`, product("1", `r${i}`)]),
    );
    const source = await serve(
      routes({
        "/streams/v1/index.json": index({ p: imageEntry }),
        "/streams/v1/p.json": JSON.stringify({ format: "products:1.0", products }),
      }),
    );
    const error = await refusal(readSource({ url: source.url, limits: { maxProducts: 5 } }));
    expect(error.message).toMatch(/p\.json: 6 products, more than the 5 a product file may hold/);
  });

  it("collapses warnings into the first ten and a count", async () => {
    const entries = Object.fromEntries(
      Array.from({ length: 30 }, (_, i) => [`e${String(i).padStart(2, "0")}`, {}]),
    );
    const source = await serve(routes({ "/streams/v1/index.json": index(entries) }));
    const { warnings } = await readSource({ url: source.url });
    expect(warnings).toHaveLength(11);
    expect(warnings[0]).toMatch(/skipped e00/);
    expect(warnings[10]).toBe("and 20 more warnings");
  });

  it("skips only a product whose version or names are not plain path segments", async () => {
    const source = await serve(
      routes({
        "/streams/v1/index.json": index({ p: imageEntry }),
        "/streams/v1/p.json": JSON.stringify({
          format: "products:1.0",
          products: {
            good: product("20250101"),
            "bad-version": product("2025/../../x", "jammy"),
            "bad-arch": product("20250101", "focal", ".."),
          },
        }),
      }),
    );
    const contents = await readSource({ url: source.url });
    expect(contents.images.map((image) => `${image.id} ${image.version}`)).toEqual([
      "ubuntu/noble/amd64 20250101",
    ]);
    expect(contents.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/skipped bad-version: its version "2025\/\.\.\/\.\.\/x" contains '\/'/),
        expect.stringMatching(/bad-arch/),
      ]),
    );
  });

  it("uses the newest good version when a newer one is not a plain path segment, and says so", async () => {
    const good = product("20250101");
    const versions = (good["versions"] as Record<string, unknown>)["20250101"];
    const source = await serve(
      routes({
        "/streams/v1/index.json": index({ p: imageEntry }),
        "/streams/v1/p.json": JSON.stringify({
          format: "products:1.0",
          products: {
            noble: {
              ...good,
              versions: { "20250101": versions, "20990101/../../x": versions, "2025/..": versions },
            },
          },
        }),
      }),
    );
    const contents = await readSource({ url: source.url });
    expect(contents.images.map((image) => `${image.id} ${image.version}`)).toEqual([
      "ubuntu/noble/amd64 20250101",
    ]);
    // The older bad name would never have been used: only the newer one is worth a warning.
    expect(contents.warnings).toEqual([
      expect.stringMatching(
        /noble: skipped version "20990101\/\.\.\/\.\.\/x": contains '\/'; using 20250101$/,
      ),
    ]);
  });

  it("refuses a source whose product files hold more products together than the limit", async () => {
    const file = (from: number) =>
      JSON.stringify({
        format: "products:1.0",
        products: Object.fromEntries(
          Array.from({ length: 3 }, (_, i) => [`p${from + i}`, product("1", `r${from + i}`)]),
        ),
      });
    const source = await serve(
      routes({
        "/streams/v1/index.json": index({
          a: { ...imageEntry, path: "streams/v1/a.json" },
          b: { ...imageEntry, path: "streams/v1/b.json" },
        }),
        "/streams/v1/a.json": file(0),
        "/streams/v1/b.json": file(3),
      }),
    );
    const error = await refusal(readSource({ url: source.url, limits: { sourceMaxProducts: 5 } }));
    expect(error.message).toMatch(
      /b\.json: its 3 products bring the source to 6, more than the 5 products a source may offer$/,
    );
    expect((await readSource({ url: source.url, limits: { sourceMaxProducts: 6 } })).images).toHaveLength(6);
  });

  it("reads product files one at a time, however many entries name them", async () => {
    let open = 0;
    let most = 0;
    const document = JSON.stringify({ format: "products:1.0", products: { a: product("1") } });
    const entries = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`e${i}`, imageEntry]));
    const source = await serve((req, res) => {
      if (req.url === "/streams/v1/index.json") return void res.writeHead(200).end(index(entries));
      most = Math.max(most, ++open);
      // Each answer waits a moment, so reads made together would overlap here.
      setTimeout(() => {
        open--;
        res.writeHead(200).end(document);
      }, 30);
    });
    const { warnings } = await readSource({ url: source.url });
    expect(most).toBe(1);
    expect(source.hits).toHaveLength(21);
    expect(warnings.at(-1)).toBe("and 9 more warnings");
  });

  it("keeps the first ten of millions of warnings and counts the rest", () => {
    const list = new WarningList(10);
    for (let i = 0; i < 4_000_000; i++) list.push(`warning ${i}`);
    expect(list.lines()).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `warning ${i}`),
      "and 3999990 more warnings",
    ]);
  });

  it("refuses a compressed document without inflating it", async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    let asked: string | undefined;
    const source = await serve((req, res) => {
      asked = req.headers["accept-encoding"];
      res.writeHead(200, { "content-encoding": "gzip", "content-length": bomb.length }).end(bomb);
    });
    const error = await refusal(readSource({ url: source.url }));
    expect(error.message).toMatch(
      /index\.json: sent with Content-Encoding gzip; documents are read uncompressed$/,
    );
    expect(asked).toBe("identity");
  });
});
