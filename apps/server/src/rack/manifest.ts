import { z } from "zod";
import type { Manifest, ManifestFile, ManifestImage } from "@bootstream/protocol";

// Every name in a manifest becomes a path under the published tree, so the rack checks them itself
// rather than trusting the region: a bad or hostile manifest must never write outside DATA_DIR.
// The rule is deliberately loose (upstream names vary); it only excludes what can escape or collide.
const segment = z
  .string()
  .min(1)
  .max(255)
  .refine(
    (s) => s !== "." && s !== ".." && !s.includes("/") && !s.includes("\0"),
    "not a plain path segment",
  );

const relativePath = z
  .string()
  .min(1)
  .max(1024)
  .refine(
    (p) => p.split("/").every((s) => segment.safeParse(s).success),
    "not a relative path of plain segments",
  );

const fileSchema = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  ftype: z.string().max(100),
  name: relativePath,
});

const imageSchema = z.object({
  id: z.string().refine((id) => {
    const parts = id.split("/");
    return parts.length === 3 && parts.every((s) => segment.safeParse(s).success);
  }, "not an os/release/arch id"),
  version: segment,
  files: z.array(fileSchema).max(10_000),
});

export const manifestSchema = z
  .object({
    generation: z.number().int().min(0),
    images: z.array(imageSchema).max(10_000),
  })
  .superRefine((manifest, ctx) => {
    const problem = layoutProblem(manifest);
    if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
  });

/** The manifest as the rack keeps it, or an error message fit for a log line. */
export function parseManifest(
  value: unknown,
): { ok: true; manifest: Manifest } | { ok: false; error: string } {
  const parsed = manifestSchema.safeParse(value);
  if (parsed.success) return { ok: true, manifest: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? issue.path.join(".") + ": " : "";
  return { ok: false, error: `${where}${issue?.message ?? "invalid manifest"}` };
}

/** Where a file lives inside a snapshot: `images/<os>/<release>/<arch>/<version>/<name>`. */
export function publishedPath(image: ManifestImage, file: ManifestFile): string {
  return `images/${image.id}/${image.version}/${file.name}`;
}

/** Every file the manifest names, once per sha256, with its size. */
export function wantedFiles(manifest: Manifest): Map<string, number> {
  const files = new Map<string, number>();
  for (const image of manifest.images) for (const file of image.files) files.set(file.sha256, file.size);
  return files;
}

/** Same content and generation: publishing it again would change nothing a reader can see. */
export function sameManifest(a: Manifest, b: Manifest): boolean {
  return a.generation === b.generation && JSON.stringify(a.images) === JSON.stringify(b.images);
}

/**
 * Checks the manifest can be laid out as a tree: no two images in one directory, no two files at one
 * path, no file where another needs a directory, and one size per sha256 (a sha is one file).
 */
function layoutProblem(manifest: Manifest): string | null {
  const ids = new Set<string>();
  const files = new Set<string>();
  const dirs = new Set<string>();
  const sizes = new Map<string, number>();
  for (const image of manifest.images) {
    if (ids.has(image.id)) return `image ${image.id} is listed twice`;
    ids.add(image.id);
    for (const file of image.files) {
      const known = sizes.get(file.sha256);
      if (known !== undefined && known !== file.size) {
        return `file ${file.sha256} is listed with sizes ${known} and ${file.size}`;
      }
      sizes.set(file.sha256, file.size);
      const path = publishedPath(image, file);
      if (files.has(path) || dirs.has(path)) return `${path} is listed twice or is also a directory`;
      files.add(path);
      const parts = path.split("/");
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join("/");
        if (files.has(dir)) return `${dir} is both a file and a directory`;
        dirs.add(dir);
      }
    }
  }
  return null;
}
