import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { rm, stat } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ContentStore } from "./content-store";
import { downloadFile } from "./download";
import { DownloadError } from "./errors";
import { payload, sha256, tempDir } from "./test-helpers";

// Payload redirects are followed by hand and checked hop by hop, as the index reader does.
const content = payload(32 * 1024);
const sha = sha256(content);

type Seen = { url: string; headers: IncomingHttpHeaders };
let root: string;
let source: { server: Server; base: string; seen: Seen[] };
let elsewhere: { server: Server; base: string; seen: Seen[] };

async function serve(route: (url: string, res: import("node:http").ServerResponse) => void) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    route(req.url ?? "", res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

beforeEach(async () => {
  root = await tempDir();
  // Another origin on loopback: what a hostile source would point the region at (/metrics, a LAN service).
  elsewhere = await serve((_url, res) => res.writeHead(200).end(content));
  source = await serve((url, res) => {
    const loop = /^\/loop\/(\d+)$/.exec(url);
    if (url === "/file") res.writeHead(200, { "content-length": String(content.length) }).end(content);
    else if (url === "/moved") res.writeHead(302, { location: "/file" }).end();
    else if (url === "/away") res.writeHead(302, { location: `${elsewhere.base}/file` }).end();
    else if (url === "/chain") res.writeHead(307, { location: "/away" }).end();
    else if (loop) res.writeHead(302, { location: `/loop/${Number(loop[1]) + 1}` }).end();
    else res.writeHead(404).end();
  });
});

afterEach(async () => {
  for (const s of [source, elsewhere]) await new Promise<void>((resolve) => s.server.close(() => resolve()));
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

const get = (store: ContentStore, path: string) =>
  downloadFile({
    store,
    url: `${source.base}${path}`,
    sha256: sha,
    size: content.length,
    headers: { authorization: "Basic dXNlcjpwYXNz" },
    backoff: { baseMs: 1, maxMs: 1 },
  });

describe("payload redirects", () => {
  it("follows a redirect on the source's own origin, credentials and all", async () => {
    const store = await ContentStore.open(root);
    await get(store, "/moved");
    expect(await store.has(sha)).toBe(true);
    expect(source.seen.map((s) => [s.url, s.headers.authorization])).toEqual([
      ["/moved", "Basic dXNlcjpwYXNz"],
      ["/file", "Basic dXNlcjpwYXNz"],
    ]);
  });

  it.each([
    ["/away", ["/away"]],
    ["/chain", ["/chain", "/away"]],
  ])("refuses %s to another origin, without asking it anything, and does not retry", async (path, asked) => {
    const store = await ContentStore.open(root);
    const err = await failure(get(store, path));
    expect(err.message).toBe(
      `GET ${source.base}${path}: redirect refused: to another origin (${elsewhere.base})`,
    );
    expect(err.retryable).toBe(false);
    expect(source.seen.map((s) => s.url)).toEqual(asked);
    expect(elsewhere.seen).toEqual([]);
    expect(await store.has(sha)).toBe(false);
  });

  it("gives up after 5 hops", async () => {
    const store = await ContentStore.open(root);
    const err = await failure(get(store, "/loop/0"));
    expect(err.message).toBe(`GET ${source.base}/loop/0: more than 5 redirects`);
    expect(source.seen.map((s) => s.url)).toEqual([0, 1, 2, 3, 4, 5].map((n) => `/loop/${n}`));
  });
});

describe("store file modes", () => {
  it("makes a private store's files 0600 and its directories 0700; a rack's stay readable", async () => {
    const region = await ContentStore.open(`${root}/region`, { private: true });
    await get(region, "/file");
    expect((await stat(region.pathOf(sha))).mode & 0o777).toBe(0o600);
    expect((await stat(`${root}/region/store`)).mode & 0o777).toBe(0o700);
    const rack = await ContentStore.open(`${root}/rack`);
    await get(rack, "/file");
    expect((await stat(rack.pathOf(sha))).mode & 0o777).toBe(0o644);
  });
});
