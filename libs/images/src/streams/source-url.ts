import { SourceError } from "./source-error";

const SCHEMES = new Set(["http:", "https:", "file:"]);
const INDEX_SUFFIX = /streams\/v1\/index\.s?json$/;

/** The URL without credentials, for messages and logs. */
export function displayUrl(url: URL | string): string {
  const parsed = typeof url === "string" ? URL.parse(url) : url;
  if (parsed === null) return String(url);
  if (parsed.protocol === "file:") return decodeURIComponent(parsed.pathname);
  if (parsed.username === "" && parsed.password === "") return parsed.href;
  const copy = new URL(parsed.href);
  copy.username = "";
  copy.password = "";
  return copy.href;
}

/**
 * The mirror root every simplestreams path is relative to. Accepts the root itself (with or
 * without the trailing slash) or the URL of its `streams/v1/index.(s)json`, as MAAS does.
 */
export function sourceBaseUrl(url: string | URL): URL {
  const parsed = typeof url === "string" ? URL.parse(url.trim()) : new URL(url.href);
  if (parsed === null) throw new SourceError(`"${String(url)}" is not a URL`);
  if (!SCHEMES.has(parsed.protocol)) {
    throw new SourceError(`${displayUrl(parsed)}: only http://, https:// and file:// sources are supported`);
  }
  parsed.search = "";
  parsed.hash = "";
  parsed.pathname = parsed.pathname.replace(INDEX_SUFFIX, "");
  if (!parsed.pathname.endsWith("/")) parsed.pathname += "/";
  return parsed;
}

/** Why `path` may not be fetched below a source, or null when it is a plain relative path. */
export function unsafePathReason(path: string): string | null {
  if (path.length === 0) return "is empty";
  if (path.length > 4096) return "is longer than 4096 characters";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return "contains control characters";
  if (path.includes("\\")) return "contains a backslash";
  if (path.startsWith("/")) return "is absolute";
  if (/[?#]/.test(path)) return "contains a query or fragment";
  // `a:b/c` would parse as a URL with scheme `a`: another host, or another protocol altogether.
  if ((path.split("/")[0] ?? "").includes(":")) return "starts with a URL scheme";
  for (const segment of path.split("/")) {
    if (segment === "") return "has an empty segment";
    let decoded = segment;
    if (segment.includes("%")) {
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        return "has invalid percent-encoding";
      }
      // Encoded separators or a second layer of encoding only matter to a server that decodes twice.
      if (/[/\\%]/.test(decoded)) return "has an encoded separator or percent sign";
    }
    if (decoded === "." || decoded === "..") return "has a '.' or '..' segment";
  }
  return null;
}

/**
 * The URL of an item or product file `path` below `sourceUrl`. Refuses (SourceError) a path that
 * could reach outside the source: `..`, absolute paths, other hosts, backslashes, encoded tricks.
 */
export function resolveItemUrl(sourceUrl: string | URL, path: string): string {
  const base = sourceBaseUrl(sourceUrl);
  const reason = unsafePathReason(path);
  if (reason === null) {
    const resolved = new URL(path, base);
    // Belt and braces: whatever the checks above missed, the result must stay below the base.
    if (resolved.origin === base.origin && resolved.href.startsWith(base.href)) return resolved.href;
  }
  const shown = JSON.stringify(path.length > 200 ? `${path.slice(0, 200)}…` : path);
  throw new SourceError(
    `path ${shown} escapes the source ${displayUrl(base)}: it ${reason ?? "resolves elsewhere"}`,
  );
}
