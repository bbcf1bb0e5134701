import type { ImageState, Selection } from "@bootstream/images";

export type { Catalogue, ImageState, Selection } from "@bootstream/images";
export type { ImageStatus, SelectionItem, UbuntuRelease, OtherImage } from "@bootstream/images";

export type Role = "admin" | "viewer";
export type Settings = { autoImport: boolean };
export type SourceState = {
  url: string;
  keyringSet: boolean;
  lastFetch: string | null;
  error: string | null;
};
export type ImportTrigger = "selection" | "schedule" | "manual";
export type ImportState = {
  running: boolean;
  trigger: ImportTrigger | null;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
};
export type RackState = {
  name: string;
  online: boolean;
  lastSync: string | null;
  imagesSynced: number;
  imagesTotal: number;
  error: string | null;
  /** Added to the contract: whether the rack is pulling files now, and how far its sync is. */
  syncing?: boolean;
  progress?: { bytesDone: number; bytesTotal: number } | null;
};
export type PresenceUser = { name: string; role: Role };
export type AuditEntry = { at: string; by: string; action: string; detail: string };

export type Snapshot = {
  images: ImageState[];
  selection: Selection;
  settings: Settings;
  source: SourceState;
  racks: RackState[];
  import: ImportState;
  you: PresenceUser;
};

export const IDLE_IMPORT: ImportState = {
  running: false,
  trigger: null,
  startedAt: null,
  finishedAt: null,
  error: null,
};
