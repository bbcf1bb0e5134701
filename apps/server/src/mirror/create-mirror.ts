import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { PrivateKey } from "openpgp";
import { z } from "zod";
import { MirrorOptionsError, resolveLayout } from "./options";
import type { MirrorLayout, MirrorOptions } from "./options";
import { payloadSha256, writePayload } from "./payload";
import { planMirror } from "./plan";
import type { MirrorPlan, PlannedItem, PlannedProductFile } from "./plan";
import { KERNELS } from "./releases";
import { clearsign, readSigningKey } from "./signing";

/** Saved in the mirror root: what addVersion needs to rebuild the mirror one version longer. */
export const LAYOUT_FILE = "bootstream-mirror.json";
const INDEX_PATH = "streams/v1/index.json";
const PAYLOAD_CONCURRENCY = 4;

export type MirrorSummary = {
  dir: string;
  /** file:// URL of the root, usable as a boot source URL as it is. */
  url: string;
  signed: boolean;
  /** Ubuntu version names, oldest first (CentOS ones carry an `_01` suffix). */
  versions: string[];
  images: string[];
  products: number;
  /** Distinct payload files listed, and their total size. */
  files: number;
  bytes: number;
  /** Payloads written by this run (the others were already in place). */
  written: number;
};

const layoutFileSchema = z.object({
  format: z.literal("bootstream-mirror:1"),
  signed: z.boolean(),
  layout: z.object({
    releases: z.array(z.string()),
    arches: z.array(z.string()),
    kernels: z.array(z.enum(KERNELS)),
    versions: z.number().int(),
    centos: z.array(z.string()),
    sizes: z.object({ kernel: z.number(), initrd: z.number(), squashfs: z.number(), root: z.number() }),
  }),
});

async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(`${file}.partial`, text);
  await rename(`${file}.partial`, file);
}

function toJson(document: unknown): string {
  // Upstream's layout (json.dumps indent=1), so diffs against real files stay readable.
  return `${JSON.stringify(document, null, 1)}\n`;
}

function signedPath(path: string): string {
  return path.replace(/\.json$/, ".sjson");
}

/** Every distinct payload of the plan by path: ga and hwe products list the same squashfs. */
function payloadsOf(plan: MirrorPlan): Map<string, PlannedItem> {
  const payloads = new Map<string, PlannedItem>();
  for (const file of plan.productFiles) {
    for (const product of file.products) {
      for (const items of product.versions.values()) for (const item of items) payloads.set(item.path, item);
    }
  }
  return payloads;
}

/** Writes (or, when already there with the right size, re-hashes) every payload. */
async function writePayloads(
  dir: string,
  payloads: Map<string, PlannedItem>,
): Promise<{ shas: Map<string, string>; written: number }> {
  const shas = new Map<string, string>();
  let written = 0;
  const queue = [...payloads.values()];
  const worker = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      const file = join(dir, item.path);
      const existing = await stat(file).catch(() => null);
      // Payloads are a function of their path: one already in place with the right size is reused.
      if (existing?.isFile() === true && existing.size === item.size) {
        shas.set(item.path, payloadSha256(item.path, item.size));
      } else {
        await mkdir(dirname(file), { recursive: true });
        shas.set(item.path, await writePayload(file, item.path, item.size));
        written++;
      }
    }
  };
  await Promise.all(Array.from({ length: PAYLOAD_CONCURRENCY }, worker));
  return { shas, written };
}

function productsDocument(
  file: PlannedProductFile,
  updated: string,
  shas: Map<string, string>,
): Record<string, unknown> {
  const products: Record<string, unknown> = {};
  for (const product of [...file.products].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const versions: Record<string, unknown> = {};
    for (const [version, items] of product.versions) {
      const byName: Record<string, unknown> = {};
      for (const item of items) {
        byName[item.name] = {
          ftype: item.ftype,
          ...item.fields,
          path: item.path,
          sha256: shas.get(item.path),
          size: item.size,
        };
      }
      versions[version] = { items: byName };
    }
    products[product.id] = { ...product.fields, versions };
  }
  return {
    content_id: file.contentId,
    datatype: "image-ids",
    format: "products:1.0",
    products,
    updated,
  };
}

function indexDocument(plan: MirrorPlan, signed: boolean): Record<string, unknown> {
  const index: Record<string, unknown> = {};
  for (const file of plan.productFiles) {
    index[file.contentId] = {
      datatype: "image-ids",
      format: "products:1.0",
      // As simplestreams' signing tool does: the signed index names the signed product files.
      path: signed ? signedPath(file.path) : file.path,
      products: file.products.map((product) => product.id).sort(),
      updated: plan.updated,
    };
  }
  return { format: "index:1.0", index, updated: plan.updated };
}

async function writeDocument(
  dir: string,
  path: string,
  document: unknown,
  key: PrivateKey | null,
): Promise<void> {
  const text = toJson(document);
  await writeAtomically(join(dir, path), text);
  if (key !== null) await writeAtomically(join(dir, signedPath(path)), await clearsign(text, key));
  // A signed copy left from an earlier signed run would no longer match: drop it.
  else await rm(join(dir, signedPath(path)), { force: true });
}

async function buildMirror(
  dir: string,
  layout: MirrorLayout,
  key: PrivateKey | null,
): Promise<MirrorSummary> {
  const root = resolve(dir);
  const plan = planMirror(layout);
  const payloads = payloadsOf(plan);
  const { shas, written } = await writePayloads(root, payloads);
  // Product files before the index, so the index never names a product file not yet written.
  for (const file of plan.productFiles) {
    await writeDocument(root, file.path, productsDocument(file, plan.updated, shas), key);
  }
  await writeAtomically(join(root, INDEX_PATH), toJson(indexDocument(plan, false)));
  if (key !== null) {
    await writeAtomically(
      join(root, signedPath(INDEX_PATH)),
      await clearsign(toJson(indexDocument(plan, true)), key),
    );
  } else {
    await rm(join(root, signedPath(INDEX_PATH)), { force: true });
  }
  await writeAtomically(
    join(root, LAYOUT_FILE),
    toJson({ format: "bootstream-mirror:1", signed: key !== null, layout }),
  );

  const products = plan.productFiles.flatMap((file) => file.products);
  const images = new Set(products.map((p) => `${p.fields.os}/${p.fields.release}/${p.fields.arch}`));
  return {
    dir: root,
    url: pathToFileURL(`${root}/`).href,
    signed: key !== null,
    versions: plan.ubuntuVersions,
    images: [...images].sort(),
    products: products.length,
    files: payloads.size,
    bytes: [...payloads.values()].reduce((sum, item) => sum + item.size, 0),
    written,
  };
}

/**
 * Writes a simplestreams mirror with synthetic, deterministic payloads into `dir` (created if
 * needed), laid out like images.maas.io. Running it again on the same directory rewrites the
 * documents and only the payloads that are missing or the wrong size.
 */
export async function createMirror(dir: string, options: MirrorOptions = {}): Promise<MirrorSummary> {
  const layout = resolveLayout(options);
  const key = options.signingKey === undefined ? null : await readSigningKey(options.signingKey);
  return buildMirror(dir, layout, key);
}

/**
 * Publishes one more (newer) version of every product in a mirror createMirror made, as
 * upstream does when it releases new images. A signed mirror needs its key again.
 */
export async function addVersion(dir: string, options: { signingKey?: string } = {}): Promise<MirrorSummary> {
  let saved: z.infer<typeof layoutFileSchema>;
  try {
    saved = layoutFileSchema.parse(JSON.parse(await readFile(join(dir, LAYOUT_FILE), "utf8")));
  } catch (error) {
    throw new MirrorOptionsError(
      `${dir} is not a mirror made by "bootstream mirror create" (${(error as Error).message})`,
    );
  }
  if (saved.signed && options.signingKey === undefined) {
    throw new MirrorOptionsError(`${dir} is signed: give its signing key to add a version`);
  }
  const layout = resolveLayout({ ...saved.layout, versions: saved.layout.versions + 1 });
  const key = options.signingKey === undefined ? null : await readSigningKey(options.signingKey);
  return buildMirror(dir, layout, key);
}
