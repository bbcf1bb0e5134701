import type { ImageRecord } from "@bootstream/images";
import { EntitySchema, type ValueTransformer } from "typeorm";

// EntitySchema rather than decorators: no reflect-metadata, no decorator compilation, and the row
// types stay plain objects that the rest of the server can use without TypeORM classes.

/** PostgreSQL returns bigint as a string; byte counts fit comfortably in a JS number (< 2^53). */
const bigintAsNumber: ValueTransformer = {
  from: (value: string | number | null) => (value === null ? null : Number(value)),
  to: (value: number | null) => value,
};

export type TokenRow = {
  name: string;
  role: "admin" | "viewer" | "rack";
  hash: string;
  createdAt: string;
  revokedAt: string | null;
};
export const TokenEntity = new EntitySchema<TokenRow>({
  name: "token",
  columns: {
    name: { type: "varchar", length: 64, primary: true },
    role: { type: "varchar", length: 16 },
    hash: { type: "varchar", length: 64, unique: true },
    createdAt: { name: "created_at", type: "varchar", length: 32 },
    revokedAt: { name: "revoked_at", type: "varchar", length: 32, nullable: true },
  },
});

export type BootSourceRow = {
  id: number;
  url: string;
  keyring: string | null;
  lastFetch: string | null;
  error: string | null;
  catalogue: string | null;
};
export const BootSourceEntity = new EntitySchema<BootSourceRow>({
  name: "boot_source",
  columns: {
    id: { type: "integer", primary: true },
    url: { type: "text" },
    keyring: { type: "text", nullable: true },
    lastFetch: { name: "last_fetch", type: "varchar", length: 32, nullable: true },
    error: { type: "text", nullable: true },
    catalogue: { type: "text", nullable: true },
  },
});

export type SelectionRow = {
  id: number;
  revision: number;
  items: string;
  updatedBy: string;
  updatedAt: string;
};
export const SelectionEntity = new EntitySchema<SelectionRow>({
  name: "selection",
  columns: {
    id: { type: "integer", primary: true },
    revision: { type: "integer" },
    items: { type: "text" },
    updatedBy: { name: "updated_by", type: "varchar", length: 64 },
    updatedAt: { name: "updated_at", type: "varchar", length: 32 },
  },
});

export type SettingRow = { key: string; value: string };
export const SettingEntity = new EntitySchema<SettingRow>({
  name: "setting",
  columns: {
    key: { type: "varchar", length: 64, primary: true },
    value: { type: "text" },
  },
});

/** One image's record: the domain's lifecycle value (`libs/images/src/lifecycle.ts`), stored as is. */
export type ImageRow = ImageRecord;
export const ImageEntity = new EntitySchema<ImageRow>({
  name: "image",
  columns: {
    id: { type: "varchar", length: 200, primary: true },
    os: { type: "varchar", length: 64 },
    release: { type: "varchar", length: 64 },
    arch: { type: "varchar", length: 64 },
    title: { type: "varchar", length: 200 },
    version: { type: "varchar", length: 64, nullable: true },
    targetVersion: { name: "target_version", type: "varchar", length: 64, nullable: true },
    state: { type: "varchar", length: 16 },
    bytesTotal: { name: "bytes_total", type: "bigint", transformer: bigintAsNumber },
    bytesDone: { name: "bytes_done", type: "bigint", transformer: bigintAsNumber },
    error: { type: "text", nullable: true },
    // Migration 0004: the newer version beside a held one, and warnings kept apart from errors.
    nextState: { name: "next_state", type: "varchar", length: 16, nullable: true },
    nextBytesTotal: { name: "next_bytes_total", type: "bigint", default: 0, transformer: bigintAsNumber },
    nextBytesDone: { name: "next_bytes_done", type: "bigint", default: 0, transformer: bigintAsNumber },
    nextError: { name: "next_error", type: "text", nullable: true },
    warning: { type: "text", nullable: true },
    syncedAt: { name: "synced_at", type: "varchar", length: 32, nullable: true },
    updatedAt: { name: "updated_at", type: "varchar", length: 32 },
  },
});

export type ImageFileRow = {
  imageId: string;
  version: string;
  sha256: string;
  size: number;
  ftype: string;
  path: string;
};
export const ImageFileEntity = new EntitySchema<ImageFileRow>({
  name: "image_file",
  columns: {
    imageId: { name: "image_id", type: "varchar", length: 200, primary: true },
    version: { type: "varchar", length: 64, primary: true },
    // One row per path (migration 0002): two paths of an image may name one sha256.
    path: { type: "text", primary: true },
    sha256: { type: "varchar", length: 64 },
    size: { type: "bigint", transformer: bigintAsNumber },
    ftype: { type: "varchar", length: 32 },
  },
});

export type RackRow = {
  name: string;
  firstSeen: string;
  lastSeen: string;
  online: boolean;
  lastSync: string | null;
  error: string | null;
};
export const RackEntity = new EntitySchema<RackRow>({
  name: "rack",
  columns: {
    name: { type: "varchar", length: 64, primary: true },
    firstSeen: { name: "first_seen", type: "varchar", length: 32 },
    lastSeen: { name: "last_seen", type: "varchar", length: 32 },
    online: { type: "boolean" },
    lastSync: { name: "last_sync", type: "varchar", length: 32, nullable: true },
    error: { type: "text", nullable: true },
  },
});

export type RackFileRow = { rackName: string; sha256: string };
export const RackFileEntity = new EntitySchema<RackFileRow>({
  name: "rack_file",
  columns: {
    rackName: { name: "rack_name", type: "varchar", length: 64, primary: true },
    sha256: { type: "varchar", length: 64, primary: true },
  },
});

export type ImportRunRow = {
  id: number;
  trigger: string;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
};
export const ImportRunEntity = new EntitySchema<ImportRunRow>({
  name: "import_run",
  columns: {
    id: { type: "integer", primary: true, generated: "increment" },
    trigger: { type: "varchar", length: 16 },
    startedAt: { name: "started_at", type: "varchar", length: 32 },
    finishedAt: { name: "finished_at", type: "varchar", length: 32, nullable: true },
    error: { type: "text", nullable: true },
  },
});

export type AuditRow = { id: number; at: string; by: string; action: string; detail: string };
export const AuditEntity = new EntitySchema<AuditRow>({
  name: "audit",
  columns: {
    id: { type: "integer", primary: true, generated: "increment" },
    at: { type: "varchar", length: 32 },
    by: { name: "actor", type: "varchar", length: 64 },
    action: { type: "varchar", length: 64 },
    detail: { type: "text" },
  },
});

export const ENTITIES = [
  TokenEntity,
  BootSourceEntity,
  SelectionEntity,
  SettingEntity,
  ImageEntity,
  ImageFileEntity,
  RackEntity,
  RackFileEntity,
  ImportRunEntity,
  AuditEntity,
];
