/**
 * Why `name` cannot be one segment of a path on a rack (its published tree is
 * `os/release/arch/version/…`), or null when it can. The same rule as the rack's manifest check, so
 * what the reader accepts every rack accepts: one bad name must not make racks refuse a whole manifest.
 */
export function pathSegmentProblem(name: string): string | null {
  if (name.length === 0) return "is empty";
  if (name.length > 255) return "is longer than 255 characters";
  if (name === "." || name === "..") return `is "${name}"`;
  if (name.includes("/")) return "contains '/'";
  if (name.includes("\0")) return "contains a NUL";
  return null;
}
