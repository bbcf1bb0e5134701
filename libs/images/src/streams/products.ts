import type { ProductsDocument } from "./documents";
import { pathSegmentProblem } from "./path-segment";
import { SourceError } from "./source-error";
import { newestVersionName } from "./version-order";

type Level = Readonly<Record<string, unknown>>;

/**
 * A field as simplestreams resolves it (products_exdata): the deepest of top level, product,
 * version and item that sets it as a string or number wins. Upstream may move a field shared by
 * every product to the top of the file, so nothing can be read from one level alone.
 */
function inherited(levels: readonly Level[], key: string): string | undefined {
  for (let i = levels.length - 1; i >= 0; i--) {
    const value = levels[i]?.[key];
    if (typeof value === "string") return value;
    if (typeof value === "number") return String(value);
  }
  return undefined;
}

/** An item of a product's newest version, fields resolved but not yet validated. */
export type StreamItem = {
  name: string;
  ftype: string | undefined;
  path: string | undefined;
  sha256: string | undefined;
  size: string | undefined;
};

/** A product reduced to what the reader uses: its fields and its newest version's items. */
export type StreamProduct = {
  id: string;
  /** The product file it came from, as shown in messages. */
  file: string;
  os: string | undefined;
  release: string | undefined;
  arch: string | undefined;
  subarch: string | undefined;
  releaseTitle: string | undefined;
  releaseVersion: string | undefined;
  supportEol: string | undefined;
  bootloaderType: string | undefined;
  version: string;
  items: StreamItem[];
};

type Product = ProductsDocument["products"][string];

/**
 * One product at its newest version, or a warning when that version's name is not a plain path
 * segment (racks store it as a directory): only that product is skipped.
 */
export function newestProduct(
  document: ProductsDocument,
  id: string,
  product: Product,
  file: string,
): StreamProduct | { warning: string } {
  const top: Level = document;
  const versions = product.versions ?? {};
  const version = newestVersionName(Object.keys(versions));
  const versionData = version === undefined ? undefined : versions[version];
  if (version === undefined || versionData === undefined) {
    throw new SourceError(`${file}: product ${id} has no versions`);
  }
  const levels: Level[] = [top, product, versionData];
  const field = (key: string) => inherited(levels, key);
  // os/release/arch are checked where images are grouped (collectImages).
  const problem = pathSegmentProblem(version);
  if (problem !== null) {
    return {
      warning: `${file}: skipped ${id}: its version ${JSON.stringify(version.slice(0, 80))} ${problem}`,
    };
  }
  const items = Object.entries(versionData.items ?? {}).map(([name, item]): StreamItem => {
    const itemLevels = [...levels, item];
    return {
      name,
      ftype: inherited(itemLevels, "ftype"),
      path: inherited(itemLevels, "path"),
      sha256: inherited(itemLevels, "sha256"),
      size: inherited(itemLevels, "size"),
    };
  });
  return {
    id,
    file,
    os: field("os"),
    release: field("release"),
    arch: field("arch"),
    subarch: field("subarch"),
    releaseTitle: field("release_title"),
    releaseVersion: field("version"),
    supportEol: field("support_eol"),
    bootloaderType: field("bootloader-type"),
    version,
    items,
  };
}

/** Every product of a products:1.0 document, at its newest version; skipped ones go to `warnings`. */
export function newestProducts(
  document: ProductsDocument,
  file: string,
  warnings: string[] = [],
): StreamProduct[] {
  const products: StreamProduct[] = [];
  for (const [id, product] of Object.entries(document.products)) {
    const result = newestProduct(document, id, product, file);
    if ("warning" in result) warnings.push(result.warning);
    else products.push(result);
  }
  return products;
}
