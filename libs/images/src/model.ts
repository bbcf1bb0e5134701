// The shapes the contract names. Everything else in the domain produces or consumes these.

export const IMAGE_STATES = ["queued", "downloading", "synced", "rack-synced", "failed"] as const;
export type ImageStatus = (typeof IMAGE_STATES)[number];

export type ImageState = {
  id: string;
  os: string;
  release: string;
  arch: string;
  title: string;
  version: string | null;
  state: ImageStatus;
  bytesTotal: number;
  bytesDone: number;
  /**
   * `total`: the online racks; `syncing`: online racks pulling this image right now; `offline`:
   * racks registered but offline (counted apart, they never hold an image back); `failed`: online
   * racks whose last sync failed and that neither hold nor pull this image, with `error`, the first
   * of those racks' error (racks by name; null when none failed).
   */
  racks: {
    synced: number;
    total: number;
    syncing: number;
    offline: number;
    failed: number;
    error: string | null;
  };
  error: string | null;
  /** Trouble that does not stop the image being served ("not offered by …; keeping 20250615"). */
  warning: string | null;
  /** A newer upstream version than `version`, and how far its import is. */
  next: ImageUpdate | null;
  /**
   * When the served version was stored whole in the region ("Last synced"); null while none is
   * served. It moves only when a newer version switches in, never on an update queued or failing.
   */
  syncedAt: string | null;
  /** When anything of the image last changed (an update queued or failing included). */
  updatedAt: string;
};

export type ImageUpdateState = "available" | "queued" | "downloading" | "failed";
export type ImageUpdate = {
  version: string;
  state: ImageUpdateState;
  bytesTotal: number;
  bytesDone: number;
  error: string | null;
};

export type SelectionItem = { os: string; release: string; arches: string[] };
export type Selection = { revision: number; items: SelectionItem[] };

export type UbuntuRelease = { release: string; title: string; lts: boolean; eol: string | null };
export type OtherImage = { os: string; release: string; title: string; arches: string[] };
export type Catalogue = {
  ubuntu: { releases: UbuntuRelease[]; arches: string[] };
  other: OtherImage[];
};

export function imageId(os: string, release: string, arch: string): string {
  return `${os}/${release}/${arch}`;
}

export function parseImageId(id: string): { os: string; release: string; arch: string } | null {
  const parts = id.split("/");
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) return null;
  const [os, release, arch] = parts as [string, string, string];
  return { os, release, arch };
}
