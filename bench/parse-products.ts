// Benchmark: read a synthetic 20,000-product simplestreams source (~50 MB product file).
// Each scenario runs in its own process, so its peak RSS is its own.
// Run: npx tsx bench/parse-products.ts [--products N]
import { spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { createCleartextMessage, generateKey, readPrivateKey, sign } from "openpgp";
import { createFetcher, readSource } from "@bootstream/images";
import { serveDirectory } from "../apps/server/src/mirror/serve";

const PRODUCT_FILE = "streams/v1/com.example:bench:v3:download.json";
const ARCHES = ["amd64", "arm64", "armhf", "ppc64el", "s390x"];
const SCENARIOS = {
  "file://, unsigned": { http: false, signed: false },
  "http://, unsigned": { http: true, signed: false },
  "file://, signed": { http: false, signed: true },
} as const;
type Scenario = keyof typeof SCENARIOS;
type Result = { images: number; files: number; ms: number; maxRssMiB: number; baseRssMiB: number };

function sha(i: number, n: number): string {
  return (i * 8 + n).toString(16).padStart(64, "0");
}

/** Streams the product file out so the generator's own memory stays flat. */
async function writeProducts(file: string, count: number): Promise<string[]> {
  const out = createWriteStream(file);
  const ids: string[] = [];
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, "drain");
  };
  await write(
    '{\n "content_id": "com.example:bench:v3:download",\n "datatype": "image-ids",\n "format": "products:1.0",\n "products": {\n',
  );
  for (let i = 0; i < count; i++) {
    const release = `rel${Math.floor(i / 10)}`;
    const arch = ARCHES[Math.floor(i / 2) % ARCHES.length] as string;
    const subarch = i % 2 === 0 ? "ga-24.04" : "hwe-24.04";
    const id = `com.example.bench:v3:boot:${release}:${arch}:${subarch}`;
    ids.push(id);
    const versions: Record<string, unknown> = {};
    for (const [v, version] of ["20250601", "20250615_01"].entries()) {
      const dir = `${release}/${arch}/${version}`;
      const item = (ftype: string, path: string, n: number) => ({
        ftype,
        path: `${dir}/${path}`,
        sha256: sha(i, v * 4 + n),
        size: 1000 + n,
      });
      versions[version] = {
        items: {
          "boot-initrd": {
            ...item("boot-initrd", `${subarch}/generic/boot-initrd`, 0),
            kpackage: "linux-generic",
          },
          "boot-kernel": {
            ...item("boot-kernel", `${subarch}/generic/boot-kernel`, 1),
            kpackage: "linux-generic",
          },
          manifest: item("manifest", "squashfs.manifest", 2),
          squashfs: item("squashfs", "squashfs", 3),
        },
      };
    }
    const product = {
      arch,
      kflavor: "generic",
      label: "stable",
      os: "ubuntu",
      release,
      release_title: `${release} LTS`,
      subarch,
      subarches: "generic,ga-16.04,ga-18.04,ga-20.04,ga-22.04,ga-24.04,hwe-p,hwe-q,hwe-r,hwe-s,hwe-t",
      support_eol: "2029-05-31",
      version: "24.04",
      versions,
    };
    const body = JSON.stringify(product, null, 1).replaceAll("\n", "\n  ");
    await write(`  ${JSON.stringify(id)}: ${body}${i + 1 < count ? "," : ""}\n`);
  }
  await write(' },\n "updated": "Sun, 15 Jun 2025 00:00:00 +0000"\n}\n');
  out.end();
  await once(out, "finish");
  return ids;
}

async function prepare(dir: string, count: number): Promise<{ bytes: number; signMs: number }> {
  await mkdir(join(dir, "streams/v1"), { recursive: true });
  const ids = await writeProducts(join(dir, PRODUCT_FILE), count);
  const index = {
    format: "index:1.0",
    index: {
      "com.example:bench:v3:download": {
        datatype: "image-ids",
        format: "products:1.0",
        path: PRODUCT_FILE,
        products: ids,
      },
    },
  };
  await writeFile(join(dir, "streams/v1/index.json"), JSON.stringify(index, null, 1));
  const { privateKey, publicKey } = await generateKey({
    type: "ecc",
    userIDs: [{ name: "bench" }],
    format: "armored",
  });
  const signingKeys = await readPrivateKey({ armoredKey: privateKey });
  const started = performance.now();
  for (const path of ["streams/v1/index.json", PRODUCT_FILE]) {
    const text = await readFile(join(dir, path), "utf8");
    const signed = await sign({ message: await createCleartextMessage({ text }), signingKeys });
    await writeFile(join(dir, path.replace(/\.json$/, ".sjson")), signed);
  }
  const signMs = performance.now() - started;
  await writeFile(join(dir, "key.pub.asc"), publicKey);
  return { bytes: (await stat(join(dir, PRODUCT_FILE))).size, signMs };
}

async function child(scenario: Scenario, dir: string): Promise<void> {
  const baseRssMiB = process.memoryUsage().rss / 2 ** 20;
  const fetcher = createFetcher({ maxBytes: 256 * 2 ** 20 });
  const server = SCENARIOS[scenario].http ? await serveDirectory(dir) : null;
  const url = server?.url ?? pathToFileURL(`${dir}/`).href;
  const keyring = SCENARIOS[scenario].signed ? await readFile(join(dir, "key.pub.asc"), "utf8") : null;
  const started = performance.now();
  const contents = await readSource({ url, keyring, fetcher });
  const ms = performance.now() - started;
  await server?.close();
  const result: Result = {
    images: contents.images.length,
    files: contents.images.reduce((n, image) => n + image.files.length, 0),
    ms,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    baseRssMiB,
  };
  process.stdout.write(JSON.stringify(result));
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      products: { type: "string", default: "20000" },
      child: { type: "string" },
      dir: { type: "string" },
    },
  });
  if (values.child !== undefined && values.dir !== undefined) {
    if (!Object.hasOwn(SCENARIOS, values.child)) throw new Error(`unknown scenario ${values.child}`);
    await child(values.child as Scenario, values.dir);
    return;
  }
  const count = Number(values.products);
  const dir = await mkdtemp(join(tmpdir(), "bootstream-bench-"));
  try {
    const { bytes, signMs } = await prepare(dir, count);
    console.log(
      `product file: ${count} products, ${(bytes / 1e6).toFixed(1)} MB (signing it took ${(signMs / 1000).toFixed(1)} s)`,
    );
    console.log(`node ${process.version}, ${process.platform}/${process.arch}\n`);
    const header = `| ${pad("scenario", 18)} | ${pad("images", 6, true)} | ${pad("files", 6, true)} | ${pad("time", 8, true)} | ${pad("peak RSS", 9, true)} | ${pad("RSS at start", 12, true)} |`;
    console.log(header);
    console.log(header.replace(/[^|]/g, "-"));
    for (const scenario of Object.keys(SCENARIOS)) {
      const run = spawnSync(
        process.execPath,
        [...process.execArgv, fileURLToPath(import.meta.url), "--child", scenario, "--dir", dir],
        { encoding: "utf8", maxBuffer: 1 << 20 },
      );
      if (run.status !== 0) throw new Error(`${scenario} failed:\n${run.stderr}`);
      const r = JSON.parse(run.stdout) as Result;
      console.log(
        `| ${pad(scenario, 18)} | ${pad(String(r.images), 6, true)} | ${pad(String(r.files), 6, true)} | ${pad(`${(r.ms / 1000).toFixed(2)} s`, 8, true)} | ${pad(`${r.maxRssMiB.toFixed(0)} MiB`, 9, true)} | ${pad(`${r.baseRssMiB.toFixed(0)} MiB`, 12, true)} |`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
