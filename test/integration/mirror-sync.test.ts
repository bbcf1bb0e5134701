import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, stat, writeFile, mkdtemp, rm } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearsign, generateSigningKey, readSigningKey } from "../../apps/server/src/mirror/signing";
import { BIN, removeDir, startRegion } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

type Run = { code: number | null; stdout: string; stderr: string; events: Record<string, unknown>[] };

function runCli(
  args: string[],
  onLine?: (event: Record<string, unknown>, kill: () => void) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "mirror", "sync", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let pending = "";
    const events: Record<string, unknown>[] = [];
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith("{")) continue;
        const event = JSON.parse(line) as Record<string, unknown>;
        events.push(event);
        onLine?.(event, () => child.kill("SIGKILL"));
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, events }));
  });
}

/** A forwarding HTTP server in front of the upstream that counts requests by path. */
async function countingProxy(target: string): Promise<{ url: string; paths: string[]; server: Server }> {
  const paths: string[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    paths.push(req.url ?? "");
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, paths, server };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    const rel = path.relative(dir, full);
    if (!rel.startsWith(".bootstream-sync")) out.push(rel);
  }
  return out.sort();
}

type Doc = {
  products: Record<
    string,
    {
      release?: string;
      arch?: string;
      versions: Record<string, { items: Record<string, { path: string; sha256: string; size: number }> }>;
    }
  >;
};

async function products(dir: string): Promise<Map<string, Doc["products"][string]>> {
  const index = JSON.parse(await readFile(path.join(dir, "streams/v1/index.json"), "utf8")) as {
    index: Record<string, { path: string }>;
  };
  const out = new Map<string, Doc["products"][string]>();
  for (const entry of Object.values(index.index)) {
    const doc = JSON.parse(await readFile(path.join(dir, entry.path), "utf8")) as Doc;
    for (const [id, product] of Object.entries(doc.products)) out.set(id, product);
  }
  return out;
}

const BOOTLOADER = (arch: string) =>
  `com.ubuntu.maas:stable:1:bootloader-download:grub-efi-signed:uefi:${arch}`;

/** Adds a bootloaders product file (uefi amd64 and arm64, as upstream's) to a signed synthetic mirror. */
async function addBootloaders(dir: string, privateKey: string): Promise<void> {
  const key = await readSigningKey(privateKey);
  const products: Record<string, unknown> = {};
  for (const arch of ["amd64", "arm64"]) {
    const bytes = Buffer.from(`grub2-signed for ${arch}\n`.repeat(200));
    const file = `bootloaders/uefi/${arch}/20240101.0/grub2-signed.tar.xz`;
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), bytes);
    products[BOOTLOADER(arch)] = {
      arch,
      os: "grub-efi-signed",
      "bootloader-type": "uefi",
      label: "stable",
      versions: {
        "20240101.0": {
          items: {
            "grub2-signed.tar.xz": {
              ftype: "archive.tar.xz",
              path: file,
              sha256: createHash("sha256").update(bytes).digest("hex"),
              size: bytes.length,
            },
          },
        },
      },
    };
  }
  const contentId = "com.ubuntu.maas:stable:1:bootloader-download";
  const text = `${JSON.stringify({ format: "products:1.0", content_id: contentId, datatype: "image-ids", products }, null, 1)}\n`;
  await writeFile(path.join(dir, "streams/v1/bootloaders.json"), text);
  await writeFile(path.join(dir, "streams/v1/bootloaders.sjson"), await clearsign(text, key));
  const indexPath = path.join(dir, "streams/v1/index.json");
  const index = JSON.parse(await readFile(indexPath, "utf8")) as { index: Record<string, { path: string }> };
  const entry = { datatype: "image-ids", format: "products:1.0", products: Object.keys(products) };
  index.index[contentId] = { ...entry, path: "streams/v1/bootloaders.json" };
  await writeFile(indexPath, `${JSON.stringify(index, null, 1)}\n`);
  const signed = structuredClone(index);
  for (const each of Object.values(signed.index)) each.path = each.path.replace(/\.json$/, ".sjson");
  await writeFile(
    path.join(dir, "streams/v1/index.sjson"),
    await clearsign(`${JSON.stringify(signed, null, 1)}\n`, key),
  );
}

const isPayload = (p: string) => !p.includes("/streams/");

describe("bootstream mirror sync", () => {
  let keys: { privateKey: string; publicKey: string };
  let upstream: TestMirror;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let work: string;
  let keyFile: string;
  let dest: string;
  const filters = ["arch=amd64", "release~(jammy|noble)", "--max", "1"];

  beforeAll(async () => {
    keys = await generateSigningKey();
    upstream = await startMirror({
      releases: ["jammy", "noble", "oracular"],
      arches: ["amd64", "arm64"],
      kernels: ["ga"],
      versions: 2,
      payloadSize: 16 * 1024,
      sizes: { squashfs: 2 * 1024 * 1024 },
      signingKey: keys.privateKey,
    });
    await addBootloaders(upstream.dir, keys.privateKey);
    proxy = await countingProxy(upstream.url);
    work = await mkdtemp(path.join(tmpdir(), "bootstream-sync-"));
    keyFile = path.join(work, "upstream.pub.asc");
    await writeFile(keyFile, keys.publicKey);
    dest = path.join(work, "mirror");
  });
  afterAll(async () => {
    await new Promise((resolve) => proxy?.server.close(resolve));
    await upstream?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("--dry-run lists what it would add and fetches no payload", async () => {
    const before = proxy.paths.length;
    const run = await runCli([proxy.url, dest, ...filters, "--keyring", keyFile, "--dry-run"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/dry run: would add \d+ files/);
    expect(run.stdout).toMatch(/add +\S+squashfs/);
    expect(proxy.paths.slice(before).filter(isPayload)).toEqual([]);
    await expect(stat(dest)).rejects.toThrow();
  });

  it("keeps exactly the filtered products' newest versions with payloads that hash right", async () => {
    const run = await runCli([proxy.url, dest, ...filters, "--keyring", keyFile, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const synced = await products(dest);
    const all = await products(upstream.dir);
    const expected = [...all].filter(
      ([id, p]) => p.arch === "amd64" && (/jammy|noble/.test(p.release ?? "") || id === BOOTLOADER("amd64")),
    );
    expect(all.has(BOOTLOADER("arm64"))).toBe(true);
    expect(synced.has(BOOTLOADER("amd64"))).toBe(true);
    expect([...synced.keys()].sort()).toEqual(expected.map(([id]) => id).sort());
    for (const [id, product] of synced) {
      const newest = Object.keys(all.get(id)!.versions).sort().at(-1)!;
      expect(Object.keys(product.versions)).toEqual([newest]);
      for (const item of Object.values(product.versions[newest]!.items)) {
        const bytes = await readFile(path.join(dest, item.path));
        expect(bytes.length).toBe(item.size);
        expect(createHash("sha256").update(bytes).digest("hex")).toBe(item.sha256);
      }
    }
    expect(run.events.at(-1)).toMatchObject({ event: "summary", dryRun: false });
  });

  it("a second run fetches no payload", async () => {
    const before = proxy.paths.length;
    const run = await runCli([proxy.url, dest, ...filters, "--keyring", keyFile, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    expect(proxy.paths.slice(before).filter(isPayload)).toEqual([]);
    expect(run.events.at(-1)).toMatchObject({ event: "summary", add: [], fetchedBytes: 0 });
  });

  it("a region pointed at the unsigned result imports noble amd64", async () => {
    const { serveDirectory } = await import("../../apps/server/src/mirror/serve");
    const served = await serveDirectory(dest);
    const region = await startRegion({ env: { BOOT_SOURCE_URL: served.url, BOOT_SOURCE_KEYRING: "none" } });
    const client = await watch(region.url, region.adminToken);
    try {
      await waitFor(
        client,
        (s) => s.images.get("ubuntu/noble/amd64")?.state === "synced",
        60_000,
        "import from the synced mirror",
      );
    } finally {
      client.close();
      await region.stop();
      await served.close();
      await removeDir(region.dataDir);
    }
  });

  it("a new upstream version with --max 1 prunes the old one", async () => {
    const old = await filesUnder(dest);
    await upstream.addVersion();
    const run = await runCli([proxy.url, dest, ...filters, "--keyring", keyFile, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const now = await filesUnder(dest);
    const summary = run.events.at(-1) as { remove: { path: string }[]; add: { path: string }[] };
    expect(summary.remove.length).toBeGreaterThan(0);
    for (const file of summary.remove) {
      expect(old).toContain(file.path);
      expect(now).not.toContain(file.path);
    }
    for (const file of summary.add) expect(now).toContain(file.path);
    for (const product of (await products(dest)).values())
      expect(Object.keys(product.versions)).toHaveLength(1);
  });

  it("resumes after kill -9 mid-payload, fetching under 1.2x the bytes", async () => {
    const fresh = path.join(work, "resumed");
    upstream.proxy.bytesPerSecond = 1024 * 1024;
    let killed = false;
    const first = await runCli(
      [proxy.url, fresh, ...filters, "--keyring", keyFile, "--json"],
      (event, kill) => {
        if (!killed && event.event === "progress" && (event.bytes as number) > 1024 * 1024) {
          killed = true;
          kill();
        }
      },
    );
    upstream.proxy.bytesPerSecond = Infinity;
    expect(killed, first.stderr).toBe(true);
    await expect(stat(path.join(fresh, "streams/v1/index.json"))).rejects.toThrow();
    const plan = first.events.find((e) => e.event === "plan") as { addBytes: number };
    const rest = await runCli([proxy.url, fresh, ...filters, "--keyring", keyFile, "--json"]);
    expect(rest.code, rest.stderr).toBe(0);
    const summary = rest.events.at(-1) as { fetchedBytes: number };
    const firstBytes = first.events
      .filter((e) => e.event === "fetched")
      .reduce((s, e) => s + (e.bytes as number), 0);
    expect(summary.fetchedBytes).toBeLessThan(plan.addBytes);
    expect(summary.fetchedBytes + firstBytes).toBeLessThan(plan.addBytes * 1.2);
  });

  it.each([
    ["a wrong keyring", "key", /signed by unknown key|bad signature/],
    ["a tampered product file", "product", /signature/],
    ["a payload with a wrong sha256", "payload", /sha256/],
  ])("%s fails with a clear message and publishes nothing", async (_, kind, message) => {
    const target = path.join(work, `bad-${kind}`);
    let keyring = keyFile;
    let restore: (() => Promise<void>) | null = null;
    if (kind === "key") {
      keyring = path.join(work, "other.pub.asc");
      await writeFile(keyring, (await generateSigningKey("someone else")).publicKey);
    } else {
      const file =
        kind === "product"
          ? path.join(upstream.dir, "streams/v1/com.ubuntu.maas:stable:v3:download.sjson")
          : path.join(
              upstream.dir,
              Object.values(
                [...(await products(upstream.dir)).values()].find(
                  (p) => p.release === "noble" && p.arch === "amd64",
                )!.versions,
              ).at(-1)!.items["boot-kernel"]?.path ?? "",
            );
      const original = await readFile(file);
      const changed = Buffer.from(original);
      if (kind === "product") {
        const text = changed.toString();
        await writeFile(
          file,
          text.replace(/"size": (\d)/, (_m, d: string) => `"size": ${(Number(d) + 1) % 10}`),
        );
      } else {
        changed[0] = changed[0]! ^ 0xff;
        await writeFile(file, changed);
      }
      restore = () => writeFile(file, original);
    }
    try {
      const run = await runCli([proxy.url, target, ...filters, "--keyring", keyring]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(message);
      expect(await filesUnder(target).catch(() => [])).toEqual([]);
    } finally {
      await restore?.();
    }
  });
});
