import { z } from "zod";

// The `/rack` namespace: region ↔ rack controller agents. Authenticated with
// `auth: { token: RACK_TOKEN, name }` (a `rack` token, valid for that name only) or the weaker
// site-wide `auth: { secret: RACK_SECRET, name }`; a wrong credential fails the connection with
// `unauthorized`.

export const RACK_NAMESPACE = "/rack";

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** One file of one image, with the name it gets in the rack's published tree. */
export type ManifestFile = { sha256: string; size: number; ftype: string; name: string };
export type ManifestImage = { id: string; version: string; files: ManifestFile[] };
/** Everything a rack must hold: the files of every synced image, at its held version. */
export type Manifest = { generation: number; images: ManifestImage[] };

export type RackProgress = { bytesDone: number; bytesTotal: number };

/** What a rack tells the region: its published inventory, and how a sync is going. */
export type RackReport = {
  /** sha256 of every file in the rack's published set. */
  inventory: string[];
  /** The manifest generation the published set was built from (0: none yet). */
  generation: number;
  syncing: boolean;
  progress: RackProgress | null;
  lastSync: string | null;
  error: string | null;
};

// Every name in a manifest becomes a path under the rack's published tree. The region checks what it
// sends and the rack checks what it receives (never trusting the region): a bad or hostile manifest must never write outside DATA_DIR.
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

const manifestFileSchema = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  ftype: z.string().max(100),
  name: relativePath,
});

const manifestImageSchema = z.object({
  id: z.string().refine((id) => {
    const parts = id.split("/");
    return parts.length === 3 && parts.every((s) => segment.safeParse(s).success);
  }, "not an os/release/arch id"),
  version: segment,
  files: z.array(manifestFileSchema).max(10_000),
});

export const manifestSchema = z
  .object({
    generation: z.number().int().min(0),
    images: z.array(manifestImageSchema).max(10_000),
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

export const rackNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-' only");

export const rackReportSchema = z.strictObject({
  inventory: z.array(sha256).max(100_000),
  generation: z.number().int().min(0),
  syncing: z.boolean(),
  progress: z.strictObject({ bytesDone: z.number().min(0), bytesTotal: z.number().min(0) }).nullable(),
  lastSync: z.string().max(40).nullable(),
  error: z.string().max(2000).nullable(),
});

export type RackServerToClient = {
  /** Sent on connect and whenever the set of synced images changes. */
  manifest: (manifest: Manifest) => void;
  /** The region finished an import: sync now rather than at the next tick. */
  "sync:now": () => void;
};

export type RackClientToServer = {
  report: (report: RackReport, ack: (answer: { ok: boolean; error?: string }) => void) => void;
};
