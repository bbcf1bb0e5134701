// `bootstream mirror sync`: a verified, filtered, resumable copy of a simplestreams source.
import { link, mkdir, readFile, readdir, rename, rm, stat, writeFile, copyFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  ContentStore,
  SourceError,
  createDownloadAgent,
  createFetcher,
  decodeText,
  displayUrl,
  downloadFile,
  parseIndexDocument,
  parseJson,
  parseProductsDocument,
  readKeyring,
  resolveItemUrl,
  runPool,
  basicAuthorization,
  sourceBaseUrl,
  splitCredentials,
  unsafePathReason,
  verifyClearsigned,
} from "@bootstream/images";
import type { Keyring, ProductsDocument } from "@bootstream/images";
import type { PrivateKey } from "openpgp";
import { clearsign } from "./signing";
import { keptVersions, planSync, productMatches } from "./sync-plan";
import type { Filter, HeldFile, SyncPlan, WantedFile } from "./sync-plan";

/** Where a sync keeps its state and verified payloads, inside DIR (never named by the index). */
export const SYNC_STATE_DIR = ".bootstream-sync";
const STATE_FILE = "state.json";
const INDEX_JSON = "streams/v1/index.json";
const INDEX_SJSON = "streams/v1/index.sjson";
/** Payloads fetched at once. */
export const SYNC_CONCURRENCY = 4;

export type SyncEvent =
  | { event: "plan"; add: number; addBytes: number; keep: number; remove: number; removeBytes: number }
  | { event: "progress"; files: number; totalFiles: number; bytes: number; totalBytes: number }
  | { event: "fetched"; path: string; sha256: string; bytes: number; resumedFrom: number }
  | { event: "removed"; path: string; size: number };

export type SyncOptions = {
  source: string;
  dir: string;
  filters: readonly Filter[];
  max?: number;
  /** Armored public keys the source must be signed with; null reads the unsigned `.json`. */
  keyring: string | null;
  signingKey?: PrivateKey;
  dryRun?: boolean;
  onEvent?: (event: SyncEvent) => void;
  signal?: AbortSignal;
};

export type SyncSummary = {
  plan: SyncPlan;
  products: number;
  fetchedBytes: number;
  requests: number;
  signed: boolean;
  dryRun: boolean;
};

type Level = Record<string, unknown>;
type State = { files: Record<string, { sha256: string; size: number }> };

function scalar(levels: readonly Level[], key: string): string | undefined {
  for (let i = levels.length - 1; i >= 0; i--) {
    const value = levels[i]?.[key];
    if (typeof value === "string") return value;
    if (typeof value === "number") return String(value);
  }
  return undefined;
}

/** Scalar fields of a product with simplestreams inheritance from the top of its file. */
function productFields(top: Level, product: Level): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const level of [top, product]) {
    for (const [key, value] of Object.entries(level)) {
      if (typeof value === "string" || typeof value === "number") fields[key] = String(value);
    }
  }
  return fields;
}

function safePath(path: string, where: string): string {
  const reason = unsafePathReason(path);
  if (reason !== null) throw new SourceError(`${where}: path ${JSON.stringify(path)} ${reason}`);
  return path;
}

async function writeAtomically(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, data);
  await rename(temp, path);
}

async function readState(dir: string): Promise<State> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, SYNC_STATE_DIR, STATE_FILE), "utf8")) as State;
    return typeof parsed.files === "object" && parsed.files !== null ? parsed : { files: {} };
  } catch {
    return { files: {} };
  }
}

/** Files an earlier run published and that are still there at their size. */
async function heldFiles(dir: string, state: State): Promise<HeldFile[]> {
  const held: HeldFile[] = [];
  for (const [path, file] of Object.entries(state.files)) {
    const size = await stat(join(dir, path)).then(
      (s) => s.size,
      () => null,
    );
    if (size !== null) held.push({ path, sha256: size === file.size ? file.sha256 : null, size });
  }
  return held;
}

type Upstream = {
  /** Product files to publish: path (unsigned name) → document. */
  documents: Map<string, ProductsDocument>;
  index: Level & { index: Record<string, Level> };
  wanted: WantedFile[];
  products: number;
};

/** The source without `user:pass@` (what messages show), and those credentials as HTTP Basic. */
function upstreamOf(source: string): { base: URL; authorization: string | undefined } {
  const { url, credentials } = splitCredentials(source);
  return {
    base: sourceBaseUrl(url),
    authorization: credentials === null ? undefined : basicAuthorization(credentials),
  };
}

async function readUpstream(options: SyncOptions, keyring: Keyring | null): Promise<Upstream> {
  const { base, authorization } = upstreamOf(options.source);
  const fetcher = createFetcher();
  const read = async (path: string): Promise<unknown> => {
    const url = new URL(resolveItemUrl(base, path));
    const shown = displayUrl(url);
    let text = decodeText(await fetcher(url, options.signal, undefined, authorization), shown);
    if (keyring !== null) text = await verifyClearsigned(text, keyring, shown);
    return parseJson(text, shown);
  };
  const signed = keyring !== null;
  const indexShown = displayUrl(new URL(signed ? INDEX_SJSON : INDEX_JSON, base));
  const upstreamIndex = parseIndexDocument(await read(signed ? INDEX_SJSON : INDEX_JSON), indexShown);
  const documents = new Map<string, ProductsDocument>();
  const entries: Record<string, Level> = {};
  const wanted: WantedFile[] = [];
  let products = 0;
  for (const [contentId, entry] of Object.entries(upstreamIndex.index).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (entry.datatype !== "image-ids" || entry.path === undefined) continue;
    const plain = safePath(entry.path.replace(/\.sjson$/, ".json"), indexShown);
    const fetched = signed ? plain.replace(/\.json$/, ".sjson") : plain;
    const document = parseProductsDocument(await read(fetched), fetched);
    const top = document as Level;
    const kept: ProductsDocument["products"] = {};
    for (const [id, product] of Object.entries(document.products)) {
      const fields = productFields(top, product as Level);
      const bootloader = fields["bootloader-type"] !== undefined;
      if (!productMatches(fields, options.filters, bootloader)) continue;
      const versions = product.versions ?? {};
      const names = keptVersions(Object.keys(versions), options.max);
      const trimmed: Record<string, (typeof versions)[string]> = {};
      for (const name of names) {
        const version = versions[name]!;
        trimmed[name] = version;
        for (const [itemName, item] of Object.entries(version.items ?? {})) {
          const levels = [top, product as Level, version as Level, item];
          const where = `${fetched}: ${id} ${name} ${itemName}`;
          const path = scalar(levels, "path");
          const sha256 = scalar(levels, "sha256");
          const size = Number(scalar(levels, "size"));
          if (path === undefined || sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)) {
            throw new SourceError(`${where}: needs a path and a sha256`);
          }
          if (!Number.isSafeInteger(size) || size < 0) throw new SourceError(`${where}: bad size`);
          wanted.push({ path: safePath(path, where), sha256, size });
        }
      }
      kept[id] = { ...product, versions: trimmed };
      products++;
    }
    if (Object.keys(kept).length === 0) continue;
    documents.set(plain, { ...document, products: kept });
    entries[contentId] = { ...entry, path: plain, products: Object.keys(kept).sort() };
  }
  const index = { ...upstreamIndex, index: entries, updated: new Date().toUTCString() };
  return { documents, index, wanted, products };
}

async function publishPayload(store: ContentStore, dir: string, file: WantedFile): Promise<void> {
  const target = join(dir, file.path);
  await mkdir(dirname(target), { recursive: true });
  const temp = `${target}.tmp-${process.pid}`;
  await rm(temp, { force: true });
  try {
    await link(store.pathOf(file.sha256), temp);
  } catch {
    await copyFile(store.pathOf(file.sha256), temp);
  }
  await rename(temp, target);
}

async function removeEmptyParents(dir: string, path: string): Promise<void> {
  let current = dirname(join(dir, path));
  while (current.startsWith(dir) && current !== dir) {
    const entries = await readdir(current).catch(() => null);
    if (entries === null || entries.length > 0) return;
    await rm(current, { recursive: false, force: true }).catch(() => undefined);
    current = dirname(current);
  }
}

/**
 * Verifies the source's index and product files, then fetches every payload the filtered, trimmed
 * products name (sha256 and size checked while streaming; `.partial` resumed), and only then
 * publishes: payloads, product files, the index last, each temp + rename. Prunes what is no longer
 * named after the new index is in place.
 */
export async function syncMirror(options: SyncOptions): Promise<SyncSummary> {
  const emit = options.onEvent ?? (() => undefined);
  const keyring = options.keyring === null ? null : await readKeyring(options.keyring);
  const upstream = await readUpstream(options, keyring);
  const state = await readState(options.dir);
  const plan = planSync(upstream.wanted, await heldFiles(options.dir, state));
  emit({
    event: "plan",
    add: plan.add.length,
    addBytes: plan.addBytes,
    keep: plan.keep.length,
    remove: plan.remove.length,
    removeBytes: plan.removeBytes,
  });
  const summary: SyncSummary = {
    plan,
    products: upstream.products,
    fetchedBytes: 0,
    requests: 0,
    signed: options.signingKey !== undefined,
    dryRun: options.dryRun === true,
  };
  if (options.dryRun === true) return summary;

  const { base, authorization } = upstreamOf(options.source);
  const store = await ContentStore.open(join(options.dir, SYNC_STATE_DIR, "store"));
  const dispatcher = createDownloadAgent();
  const bySha = new Map<string, WantedFile>();
  for (const file of plan.add) bySha.set(file.sha256, file);
  let done = 0;
  let bytes = 0;
  const progress = () =>
    emit({ event: "progress", files: done, totalFiles: bySha.size, bytes, totalBytes: plan.addBytes });
  try {
    const results = await runPool(
      [...bySha.values()],
      SYNC_CONCURRENCY,
      async (file) => {
        const result = await downloadFile({
          store,
          url: resolveItemUrl(base, file.path),
          sha256: file.sha256,
          size: file.size,
          dispatcher,
          ...(authorization === undefined ? {} : { headers: { authorization } }),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          onProgress: (delta) => {
            bytes += delta;
            progress();
          },
        });
        summary.fetchedBytes += result.bytesFetched;
        summary.requests += result.attempts;
        done++;
        emit({
          event: "fetched",
          path: file.path,
          sha256: file.sha256,
          bytes: result.bytesFetched,
          resumedFrom: result.resumedFrom,
        });
        progress();
      },
      options.signal,
    );
    const failed = results.find((result) => result.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  } finally {
    await dispatcher.close();
  }

  // Everything is verified: publish payloads, then product files, then the index.
  for (const file of plan.add) await publishPayload(store, options.dir, file);
  for (const [path, document] of upstream.documents) {
    const text = `${JSON.stringify(document, null, 1)}\n`;
    await writeAtomically(join(options.dir, path), text);
    const signedPath = join(options.dir, path.replace(/\.json$/, ".sjson"));
    if (options.signingKey !== undefined)
      await writeAtomically(signedPath, await clearsign(text, options.signingKey));
    else await rm(signedPath, { force: true });
  }
  const indexText = `${JSON.stringify(upstream.index, null, 1)}\n`;
  await writeAtomically(join(options.dir, INDEX_JSON), indexText);
  if (options.signingKey !== undefined) {
    const signedIndex = {
      ...upstream.index,
      index: Object.fromEntries(
        Object.entries(upstream.index.index).map(([id, entry]) => [
          id,
          { ...entry, path: String(entry.path).replace(/\.json$/, ".sjson") },
        ]),
      ),
    };
    await writeAtomically(
      join(options.dir, INDEX_SJSON),
      await clearsign(`${JSON.stringify(signedIndex, null, 1)}\n`, options.signingKey),
    );
  } else {
    await rm(join(options.dir, INDEX_SJSON), { force: true });
  }

  // Prune: product files and payloads no longer named, once the new index no longer names them.
  const files: State["files"] = {};
  for (const file of [...plan.keep, ...plan.add]) files[file.path] = { sha256: file.sha256, size: file.size };
  const previousDocuments = await readdir(join(options.dir, "streams/v1")).catch(() => []);
  for (const name of previousDocuments) {
    const path = `streams/v1/${name}`;
    if (path === INDEX_JSON || path === INDEX_SJSON) continue;
    if (upstream.documents.has(path) || upstream.documents.has(path.replace(/\.sjson$/, ".json"))) continue;
    if (/\.s?json$/.test(name)) await rm(join(options.dir, path), { force: true });
  }
  const wantedShas = new Set(Object.values(files).map((file) => file.sha256));
  for (const file of plan.remove) {
    await rm(join(options.dir, file.path), { force: true });
    await removeEmptyParents(options.dir, file.path);
    emit({ event: "removed", path: file.path, size: file.size });
  }
  for (const sha of await store.list()) if (!wantedShas.has(sha)) await store.remove(sha);
  await writeAtomically(join(options.dir, SYNC_STATE_DIR, STATE_FILE), `${JSON.stringify({ files })}\n`);
  return summary;
}
