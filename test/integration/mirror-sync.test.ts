import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, readdir, stat, writeFile, mkdtemp, rm } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSigningKey } from "../../apps/server/src/mirror/signing";
import { startSampleUpstream, type SampleUpstream } from "../fixtures/streams/sample-upstream";
import { BIN, removeDir, startRegion } from "../helpers/region";
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
      "bootloader-type"?: string;
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

const isPayload = (p: string) => !p.includes("/streams/");

describe("bootstream mirror sync", () => {
  let keys: { privateKey: string; publicKey: string };
  let upstream: SampleUpstream;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let work: string;
  let keyFile: string;
  let dest: string;
  const filters = ["arch=amd64", "release~(jammy|noble)", "--max", "1"];

  beforeAll(async () => {
    keys = await generateSigningKey();
    // The real samples: jammy and noble for amd64 and arm64 (two versions each), centos 7 and 8,
    // five bootloaders (uefi amd64 and arm64, open-firmware ppc64el, pxe amd64 and i386).
    upstream = await startSampleUpstream({ signingKey: keys.privateKey });
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
    // arch=amd64 and release~(jammy|noble): the four amd64 Ubuntu products... and the bootloaders
    // for amd64, which have no release field to exclude them; centos's releases do not match.
    const expected = [...all].filter(
      ([, p]) =>
        p.arch === "amd64" && (/jammy|noble/.test(p.release ?? "") || p["bootloader-type"] !== undefined),
    );
    expect(expected.map(([id]) => id).sort()).toEqual([
      "com.ubuntu.maas.stable:1:grub-efi-signed:uefi:amd64",
      "com.ubuntu.maas.stable:1:pxelinux:pxe:amd64",
      "com.ubuntu.maas.stable:v3:boot:22.04:amd64:ga-22.04",
      "com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04",
    ]);
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

  it("--progress prints lines a person can read: files, bytes, rate, ETA; then the summary", async () => {
    upstream.proxy.bytesPerSecond = 2 * 1024 * 1024;
    const run = await runCli([
      proxy.url,
      path.join(work, "progress"),
      ...filters,
      "--keyring",
      keyFile,
      "--progress",
    ]);
    upstream.proxy.bytesPerSecond = Infinity;
    expect(run.code, run.stderr).toBe(0);
    expect(run.events).toEqual([]); // no JSON on stdout
    const size = String.raw`\d+(?:\.\d+)? (?:B|KiB|MiB|GiB)`;
    const shape = new RegExp(`^files (\\d+)/(\\d+)  (${size}) of (${size})  (${size}/s|-)  ETA (\\d+s|-)$`);
    const lines = run.stderr.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(1);
    const parsed = lines.map((line) => {
      const match = shape.exec(line);
      expect(match, line).not.toBeNull();
      return { files: Number(match![1]), total: Number(match![2]), bytes: match![3]!, eta: match![6]! };
    });
    for (const [i, line] of parsed.entries()) {
      expect(line.total).toBe(parsed[0]!.total);
      if (i > 0) expect(line.files).toBeGreaterThanOrEqual(parsed[i - 1]!.files);
    }
    const last = parsed.at(-1)!;
    expect(last.files).toBe(last.total);
    expect(last.eta).toBe("0s");
    expect(lines.at(-1)).toContain(`${last.bytes} of ${last.bytes}`);
    expect(run.stdout).toMatch(
      /^mirror \(unsigned\) synced to \S+: 4 products; added \d+ files \(.+ fetched in [\d.]+ s, .+\/s\), kept 0, removed 0/,
    );
  });

  it("--json prints one JSON object a line: the plan, progress, each file fetched, the summary", async () => {
    const run = await runCli([
      proxy.url,
      path.join(work, "json"),
      ...filters,
      "--keyring",
      keyFile,
      "--json",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trimEnd().split("\n")).toHaveLength(run.events.length);
    const plan = run.events[0] as { event: string; addBytes: number };
    expect(plan.event).toBe("plan");
    const summary = run.events.at(-1) as { event: string; add: { size: number }[]; fetchedBytes: number };
    expect(summary.event).toBe("summary");
    const fetched = run.events.filter((e) => e.event === "fetched");
    expect(fetched.reduce((sum, e) => sum + (e.bytes as number), 0)).toBe(summary.fetchedBytes);
    expect(summary.add.reduce((sum, f) => sum + f.size, 0)).toBe(plan.addBytes);
    const progress = run.events.filter((e) => e.event === "progress") as {
      bytes: number;
      totalBytes: number;
    }[];
    expect(progress.length).toBeGreaterThan(0);
    for (const [i, p] of progress.entries())
      if (i > 0) expect(p.bytes).toBeGreaterThanOrEqual(progress[i - 1]!.bytes);
    expect(progress.at(-1)).toMatchObject({ bytes: plan.addBytes, totalBytes: plan.addBytes });
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
