import type { ImageState, ImportWindow, Selection, VerifyState } from "@bootstream/images";

export type { Catalogue, ImageState, ImportWindow, Selection, VerifyState } from "@bootstream/images";
export { IDLE_VERIFY } from "@bootstream/images/present";
export type {
  ImageStatus,
  ImageUpdate,
  ImageUpdateState,
  SelectionItem,
  UbuntuRelease,
  OtherImage,
} from "@bootstream/images";

export type Role = "admin" | "viewer";
/** What a token may be made for: a person's role, or one rack (`/rack` as that name, and `/files`). */
export type TokenRole = Role | "rack";
export type Settings = {
  autoImport: boolean;
  /** Bytes a second for all of the region's upstream downloads together; null for no cap. */
  bandwidthLimit: number | null;
  /** When scheduled imports may run (local time in `timezone`); null for any time. */
  importWindow: ImportWindow | null;
};
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

/** Added to the contract: what `GET /healthz` answers, per region node. */
export type HealthCheckName = "database" | "redis";
/** "ok"; "n/a" (redis on a node without REDIS_URL); "failing" (the reason is in `HealthState.errors`). */
export type HealthCheckValue = "ok" | "n/a" | "failing";
export type RegionRole = "leader" | "follower" | "single";
export type HealthState = {
  status: "ok" | "degraded";
  role: RegionRole;
  checks: Record<HealthCheckName, HealthCheckValue>;
  /** Why each failing check fails, written for a person (only failing checks appear). */
  errors: Partial<Record<HealthCheckName, string>>;
};
export type AuditEntry = { at: string; by: string; action: string; detail: string };

export type Snapshot = {
  images: ImageState[];
  selection: Selection;
  settings: Settings;
  source: SourceState;
  racks: RackState[];
  import: ImportState;
  /** The region store's verification (`store:verify`): progress, corrupt and repaired files. */
  verify: VerifyState;
  you: PresenceUser;
  /** Added to the contract: the health of the node this client is connected to. */
  health?: HealthState;
};

export const IDLE_IMPORT: ImportState = {
  running: false,
  trigger: null,
  startedAt: null,
  finishedAt: null,
  error: null,
};
