import type { ProductsDocument } from "./documents";
import { pathSegmentProblem } from "./path-segment";
import { SourceError } from "./source-error";
import { compareVersionNames, newestVersionName } from "./version-order";

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
 * One product at its newest version whose name is a plain path segment (racks store it as a
 * directory). A newer version with a name that is not is skipped with a warning and the product kept
 * at its newest good one; a product with no good version at all is skipped, with a warning.
 */
export function newestProduct(
  document: ProductsDocument,
  id: string,
  product: Product,
  file: string,
): { product: StreamProduct | null; warning: string | null } {
  const top: Level = document;
  const versions = product.versions ?? {};
  const names = Object.keys(versions);
  const newestOfAll = newestVersionName(names);
  if (newestOfAll === undefined) throw new SourceError(`${file}: product ${id} has no versions`);
  const version = newestVersionName(names.filter((name) => pathSegmentProblem(name) === null));
  if (version === undefined) {
    return {
      product: null,
      warning: `${file}: skipped ${id}: its version ${shownVersion(newestOfAll)} ${pathSegmentProblem(newestOfAll)}`,
    };
  }
  const versionData = versions[version];
  if (versionData === undefined) throw new SourceError(`${file}: product ${id} has no versions`);
  // Bad names older than the one used would never have been read: only newer ones are news.
  const skipped = names.filter(
    (name) => pathSegmentProblem(name) !== null && compareVersionNames(name, version) > 0,
  );
  const newestSkipped = newestVersionName(skipped);
  const warning =
    newestSkipped === undefined
      ? null
      : `${file}: ${id}: skipped version ${shownVersion(newestSkipped)}: ${pathSegmentProblem(newestSkipped)}` +
        `${skipped.length > 1 ? ` (and ${skipped.length - 1} more such)` : ""}; using ${version}`;
  const levels: Level[] = [top, product, versionData];
  const field = (key: string) => inherited(levels, key);
  // os/release/arch are checked where images are grouped (collectImages).
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
  const read: StreamProduct = {
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
  return { product: read, warning };
}

/** A version name as messages show it: quoted, and cut so a hostile one cannot fill a line. */
function shownVersion(name: string): string {
  return JSON.stringify(name.slice(0, 80));
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
    if (result.warning !== null) warnings.push(result.warning);
    if (result.product !== null) products.push(result.product);
  }
  return products;
}
