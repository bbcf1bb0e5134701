import { buildCatalogue } from "../catalogue";
import { decodeText, parseIndexDocument, parseJson, parseProductsDocument } from "./documents";
import type { IndexDocument } from "./documents";
import { defaultFetcher } from "./fetcher";
import type { Fetcher } from "./fetcher";
import { collectImages } from "./images";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { newestProduct } from "./products";
import type { StreamProduct } from "./products";
import { readKeyring, verifyClearsigned } from "./signature";
import type { Keyring } from "./signature";
import { SourceError, errorMessage } from "./source-error";
import { displayUrl, resolveItemUrl, sourceBaseUrl } from "./source-url";
import { basicAuthorization, splitCredentials, type SourceCredentials } from "./credentials";
import type { SourceContents } from "./types";

export type ReadSourceOptions = {
  /** The mirror root (`…/ephemeral-v3/stable/`) or its `streams/v1/index.json`. */
  url: string;
  /** Armored OpenPGP public key(s). Given: read and verify the `.sjson` documents. Absent: `.json`. */
  keyring?: string | null;
  /** HTTP Basic credentials of the source; `user:pass@` in `url` is taken out and used the same way. */
  credentials?: SourceCredentials | null;
  fetcher?: Fetcher;
  /** Stops the read: readSource then rejects with the signal's reason, not a SourceError. */
  signal?: AbortSignal;
  /** Tests lower these; see SOURCE_LIMITS. */
  limits?: Partial<SourceLimits>;
};

/**
 * What one read of a source may cost. Real streams are far below: images.maas.io's stable index is
 * a few KB with a handful of entries, its product files a few MB with a few hundred products.
 */
export type SourceLimits = {
  indexMaxBytes: number;
  productsMaxBytes: number;
  /** Entries of the index, boot images or not. */
  indexMaxEntries: number;
  /** Products of one product file. */
  maxProducts: number;
  /** Products of all the index's product files together (they are held until the read ends). */
  sourceMaxProducts: number;
  /** Warnings returned as they are; the rest are counted in one last line. */
  maxWarnings: number;
};

const MiB = 1024 * 1024;
export const SOURCE_LIMITS: SourceLimits = {
  indexMaxBytes: 1 * MiB,
  productsMaxBytes: 32 * MiB,
  indexMaxEntries: 1_000,
  maxProducts: 20_000,
  sourceMaxProducts: 20_000,
  maxWarnings: 10,
};

/** Products handled between two yields to the event loop while a product file is read. */
const PRODUCTS_PER_SLICE = 200;

/** How one read reaches its documents. */
type Reader = {
  base: URL;
  fetcher: Fetcher;
  keyring: Keyring | null;
  signal: AbortSignal | undefined;
  authorization: string | undefined;
  limits: SourceLimits;
  /** Products of the product files read so far (see sourceMaxProducts). */
  productsSeen: number;
  warnings: WarningList;
};

/** The first `max` warnings and a count of the others, so a hostile source cannot flood the log. */
export function collapseWarnings(warnings: readonly string[], max: number): string[] {
  const list = new WarningList(max);
  list.push(...warnings);
  return list.lines();
}

/**
 * Warnings as a read finds them: the first `max` kept, the others only counted, so a source that
 * raises millions holds neither memory nor the log.
 */
export class WarningList {
  private readonly kept: string[] = [];
  private more = 0;

  constructor(private readonly max: number) {}

  push(...warnings: string[]): void {
    for (const warning of warnings) {
      if (this.kept.length < this.max) this.kept.push(warning);
      else this.more++;
    }
  }

  /** The kept warnings, then `and N more warnings` when some were only counted. */
  lines(): string[] {
    if (this.more === 0) return [...this.kept];
    return [...this.kept, `and ${this.more} more warning${this.more === 1 ? "" : "s"}`];
  }
}

/** Fetches, verifies when signed, and parses one JSON document. */
async function readDocument(reader: Reader, url: URL, maxBytes: number): Promise<unknown> {
  const { fetcher, keyring, signal } = reader;
  const shown = displayUrl(url);
  let bytes: Uint8Array;
  try {
    bytes = await fetcher(url, signal, maxBytes, reader.authorization);
  } catch (error) {
    if (error instanceof SourceError) throw error;
    if (signal?.aborted === true) throw signal.reason;
    throw new SourceError(`${shown}: ${errorMessage(error)}`, { cause: error });
  }
  let text = decodeText(bytes, shown);
  if (keyring !== null) text = await verifyClearsigned(text, keyring, shown);
  return parseJson(text, shown);
}

/**
 * A signed index names `.sjson` product files and an unsigned one `.json`, but copies of one
 * index under the other name are common, so the extension follows how the source is read.
 */
function documentPath(path: string, signed: boolean): string {
  if (signed && path.endsWith(".json")) return `${path.slice(0, -".json".length)}.sjson`;
  if (!signed && path.endsWith(".sjson")) return `${path.slice(0, -".sjson".length)}.json`;
  return path;
}

function listDifference(label: string, names: readonly string[]): string {
  const shown = names.slice(0, 10).join(", ");
  return `${label}: ${shown}${names.length > 10 ? ` and ${names.length - 10} more` : ""}`;
}

type IndexEntry = IndexDocument["index"][string];

async function readProductFile(
  reader: Reader,
  indexShown: string,
  contentId: string,
  entry: IndexEntry,
): Promise<StreamProduct[]> {
  if (entry.path === undefined) throw new SourceError(`${indexShown}: entry ${contentId} names no path`);
  let url: URL;
  try {
    url = new URL(resolveItemUrl(reader.base, documentPath(entry.path, reader.keyring !== null)));
  } catch (error) {
    throw new SourceError(`${indexShown}: entry ${contentId}: ${errorMessage(error)}`, { cause: error });
  }
  const shown = displayUrl(url);
  const document = parseProductsDocument(
    await readDocument(reader, url, reader.limits.productsMaxBytes),
    shown,
  );
  const warnings = reader.warnings;
  if (document.content_id !== undefined && document.content_id !== contentId) {
    warnings.push(`${shown}: content_id ${document.content_id} differs from its index entry ${contentId}`);
  }
  const listed = new Set(entry.products ?? []);
  const present = Object.keys(document.products);
  const missing = [...listed].filter((id) => !Object.hasOwn(document.products, id));
  const unlisted = present.filter((id) => !listed.has(id));
  if (missing.length > 0) warnings.push(listDifference(`${shown}: lacks products the index names`, missing));
  if (entry.products !== undefined && unlisted.length > 0) {
    warnings.push(listDifference(`${shown}: has products the index does not name (read anyway)`, unlisted));
  }
  const entries = Object.entries(document.products);
  if (entries.length > reader.limits.maxProducts) {
    throw new SourceError(
      `${shown}: ${entries.length} products, more than the ${reader.limits.maxProducts} a product file may hold`,
    );
  }
  reader.productsSeen += entries.length;
  if (reader.productsSeen > reader.limits.sourceMaxProducts) {
    throw new SourceError(
      `${shown}: its ${entries.length} products bring the source to ${reader.productsSeen}, ` +
        `more than the ${reader.limits.sourceMaxProducts} products a source may offer`,
    );
  }
  const products: StreamProduct[] = [];
  for (let i = 0; i < entries.length; i++) {
    // A big file is read in slices, so the region keeps answering (health checks, sockets) meanwhile.
    if (i > 0 && i % PRODUCTS_PER_SLICE === 0) await yieldToEventLoop();
    const [id, product] = entries[i]!;
    const result = newestProduct(document, id, product, shown);
    if (result.warning !== null) warnings.push(result.warning);
    if (result.product !== null) products.push(result.product);
  }
  return products;
}

/**
 * Reads a simplestreams boot source: `streams/v1/index.(s)json`, then every `image-ids` product
 * file it names. Rejects with SourceError (or, once `signal` aborts, its reason); what is odd but
 * readable comes back in `warnings`.
 */
export async function readSource(options: ReadSourceOptions): Promise<SourceContents> {
  const split = splitCredentials(options.url);
  const base = sourceBaseUrl(split.url);
  const credentials = options.credentials ?? split.credentials;
  const keyring = options.keyring == null ? null : await readKeyring(options.keyring);
  const limits = { ...SOURCE_LIMITS, ...options.limits };
  const reader: Reader = {
    base,
    keyring,
    authorization: credentials === null ? undefined : basicAuthorization(credentials),
    fetcher: options.fetcher ?? defaultFetcher(),
    signal: options.signal,
    limits,
    productsSeen: 0,
    warnings: new WarningList(limits.maxWarnings),
  };
  const indexUrl = new URL(keyring === null ? "streams/v1/index.json" : "streams/v1/index.sjson", base);
  const indexShown = displayUrl(indexUrl);
  const index = parseIndexDocument(
    await readDocument(reader, indexUrl, reader.limits.indexMaxBytes),
    indexShown,
  );
  const entryCount = Object.keys(index.index).length;
  if (entryCount > reader.limits.indexMaxEntries) {
    throw new SourceError(
      `${indexShown}: ${entryCount} entries, more than the ${reader.limits.indexMaxEntries} an index may hold`,
    );
  }

  const warnings = reader.warnings;
  const products = new Map<string, StreamProduct>();
  // One product file at a time, each merged as it is read: at most one document is held, and the
  // products kept are bounded (sourceMaxProducts) however many entries name however big files.
  for (const [contentId, entry] of Object.entries(index.index).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (entry.datatype !== "image-ids" || (entry.format ?? "products:1.0") !== "products:1.0") {
      warnings.push(
        `${indexShown}: skipped ${contentId} (${entry.datatype ?? "no datatype"}, not boot images)`,
      );
      continue;
    }
    for (const product of await readProductFile(reader, indexShown, contentId, entry)) {
      const seen = products.get(product.id);
      if (seen === undefined) products.set(product.id, product);
      else warnings.push(`${product.file}: ${product.id} is also in ${seen.file}; the first is used`);
    }
  }
  const collected = collectImages([...products.values()]);
  warnings.push(...collected.warnings);
  return {
    url: base.href,
    signed: keyring !== null,
    catalogue: buildCatalogue(collected.images),
    images: collected.images,
    bootloaders: collected.bootloaders,
    warnings: warnings.lines(),
  };
}
