import { z } from "zod";

// The `/rack` namespace: region ↔ rack controller agents. Authenticated with
// `auth: { secret: RACK_SECRET, name }`; a wrong secret fails the connection with `unauthorized`.

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
