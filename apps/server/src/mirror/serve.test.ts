import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseRange } from "../http-range";
import { serveDirectory } from "./serve";
import type { ServedDirectory } from "./serve";

let root: string;
let served: ServedDirectory;
const BODY = "0123456789abcdefghij";

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

/** A raw request: fetch() would normalise the very paths the traversal checks are about. */
function get(path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Answer> {
  const { hostname, port } = new URL(served.url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "bootstream-serve-"));
  await mkdir(join(root, "mirror/streams/v1"), { recursive: true });
  await writeFile(join(root, "mirror/file.bin"), BODY);
  await writeFile(join(root, "mirror/streams/v1/index.json"), "{}");
  await writeFile(join(root, "mirror/a:b c.txt"), "colon");
  await writeFile(join(root, "secret"), "outside");
  await symlink(join(root, "secret"), join(root, "mirror/link"));
  served = await serveDirectory(join(root, "mirror"));
});
afterAll(async () => {
  await served.close();
  await rm(root, { recursive: true, force: true });
});

describe("serveDirectory", () => {
  it("serves a file with its length, type, ETag and Last-Modified; HEAD without the body", async () => {
    const full = await get("/file.bin");
    expect(full).toMatchObject({ status: 200, body: BODY });
    expect(full.headers).toMatchObject({ "content-length": "20", "accept-ranges": "bytes" });
    expect(full.headers.etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(Date.parse(String(full.headers["last-modified"]))).not.toBeNaN();
    expect((await get("/streams/v1/index.json")).headers["content-type"]).toBe("application/json");
    expect((await get("/a%3Ab%20c.txt")).body).toBe("colon");
    const head = await get("/file.bin", {}, "HEAD");
    expect(head).toMatchObject({ status: 200, body: "" });
    expect(head.headers["content-length"]).toBe("20");
  });

  it("answers one range with 206 and Content-Range", async () => {
    expect(await get("/file.bin", { range: "bytes=2-5" })).toMatchObject({
      status: 206,
      body: "2345",
      headers: { "content-range": "bytes 2-5/20", "content-length": "4" },
    });
    expect((await get("/file.bin", { range: "bytes=15-" })).body).toBe("fghij");
    expect((await get("/file.bin", { range: "bytes=-3" })).body).toBe("hij");
    expect((await get("/file.bin", { range: "bytes=18-100" })).headers["content-range"]).toBe(
      "bytes 18-19/20",
    );
  });

  it("answers 416 for a range past the end, and the whole file for several ranges", async () => {
    expect(await get("/file.bin", { range: "bytes=20-" })).toMatchObject({
      status: 416,
      headers: { "content-range": "bytes */20" },
    });
    expect(await get("/file.bin", { range: "bytes=0-1,4-5" })).toMatchObject({ status: 200, body: BODY });
  });

  it("honours If-Range only when the validator still matches, and If-None-Match", async () => {
    const { headers } = await get("/file.bin");
    const etag = String(headers.etag);
    const lastModified = String(headers["last-modified"]);
    expect((await get("/file.bin", { range: "bytes=0-1", "if-range": etag })).status).toBe(206);
    expect((await get("/file.bin", { range: "bytes=0-1", "if-range": lastModified })).status).toBe(206);
    expect(await get("/file.bin", { range: "bytes=0-1", "if-range": '"stale"' })).toMatchObject({
      status: 200,
      body: BODY,
    });
    expect((await get("/file.bin", { "if-none-match": etag })).status).toBe(304);
  });

  it("keeps everything outside the directory out of reach", async () => {
    for (const path of [
      "/../secret",
      "/%2e%2e/secret",
      "/streams/..%2f..%2fsecret",
      "/link",
      "/streams/%00",
      "/",
    ]) {
      const answer = await get(path);
      expect(answer.status, path).toBe(404);
      expect(answer.body).not.toContain("outside");
    }
    expect((await get("/streams")).status).toBe(404);
    expect((await get("/nope")).status).toBe(404);
  });

  it("allows only GET and HEAD", async () => {
    const answer = await get("/file.bin", {}, "POST");
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe("GET, HEAD");
  });
});

describe("parseRange", () => {
  it("reads single ranges and ignores what it cannot honour", () => {
    expect(parseRange("bytes=0-0", 10)).toEqual({ start: 0, end: 0 });
    expect(parseRange("bytes=-20", 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange("bytes=5-2", 10)).toBeNull();
    expect(parseRange("items=0-1", 10)).toBeNull();
    expect(parseRange("bytes=-0", 10)).toBe("unsatisfiable");
    expect(parseRange("bytes=0-", 0)).toBe("unsatisfiable");
  });
});
