import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { Cron } from "croner";
import { PRIVATE_KEYRING_MESSAGE, parseBandwidth } from "@bootstream/images";
import { DEFAULT_CLIENT_LIMITS, rate, type ClientLimitsConfig } from "./region/client-limits";

export const DEFAULT_SOURCE_URL = "http://images.maas.io/ephemeral-v3/stable/";
import { BUNDLED_KEYRING_PATH } from "./paths";

export { BUNDLED_KEYRING_PATH };

/** When a store is re-hashed (the region's and each rack agent's) unless told otherwise: weekly, Sunday 03:00. */
export const DEFAULT_VERIFY_SCHEDULE = "0 3 * * 0";

export type RegionConfig = {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | null;
  redisUrl: string | null;
  bootSourceUrl: string;
  /** BOOT_SOURCE_URL was given (flag or environment), not the default: a start says when it is not used. */
  bootSourceUrlGiven?: boolean;
  /** Armored public key(s), or null for an unsigned source. */
  bootSourceKeyring: string | null;
  adminToken: string | null;
  rackSecret: string | null;
  importSchedule: string;
  rackSyncSchedule: string;
  /** VERIFY_SCHEDULE: when the leading node re-hashes the store and repairs what it finds. */
  verifySchedule?: string;
  downloadConcurrency: number;
  /** DOWNLOAD_MIN_RATE; `bytesPerSecond: 0` when off. */
  downloadMinRate?: { bytesPerSecond: number; windowMs: number };
  /** On a cluster: how long a leader that stops renewing keeps its lease, in ms. */
  leaderLeaseMs?: number;
  /** ADVERTISE_URL: where peers and racks reach this node; null means the URL it listens on. */
  advertiseUrl?: string | null;
  /** What clients may make the region do (RATE_LIMIT_*, SOCKETS_PER_TOKEN, SOCKETS_PER_ADDRESS). */
  limits?: ClientLimitsConfig;
  /** Failed rack reports are logged as one line of counts this often (default 10 s; tests shorten it). */
  failureLogEveryMs?: number;
  logLevel: string;
};

/** A setting that does not parse. The CLI prints `message` as one line and exits 2. */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    /** What is wrong, without the setting's name (for a command that says it its own way). */
    readonly problem: string,
  ) {
    super(`invalid ${setting}: ${problem}`);
    this.name = "ConfigError";
  }
}

// Each setting: its environment variable, its --flag, and its default. The contract fixes these names.
const SETTINGS = {
  PORT: { flag: "port", fallback: "5240" },
  HOST: { flag: "host", fallback: "127.0.0.1" },
  DATA_DIR: { flag: "data-dir", fallback: "./data" },
  DATABASE_URL: { flag: "database-url", fallback: "" },
  REDIS_URL: { flag: "redis-url", fallback: "" },
  BOOT_SOURCE_URL: { flag: "boot-source-url", fallback: DEFAULT_SOURCE_URL },
  BOOT_SOURCE_KEYRING: { flag: "boot-source-keyring", fallback: "" },
  ADMIN_TOKEN: { flag: "admin-token", fallback: "" },
  RACK_SECRET: { flag: "rack-secret", fallback: "" },
  IMPORT_SCHEDULE: { flag: "import-schedule", fallback: "0 * * * *" },
  RACK_SYNC_SCHEDULE: { flag: "rack-sync-schedule", fallback: "*/5 * * * *" },
  VERIFY_SCHEDULE: { flag: "verify-schedule", fallback: DEFAULT_VERIFY_SCHEDULE },
  DOWNLOAD_CONCURRENCY: { flag: "download-concurrency", fallback: "4" },
  DOWNLOAD_MIN_RATE: { flag: "download-min-rate", fallback: "1KiB/60s" },
  LEADER_LEASE: { flag: "leader-lease", fallback: "15s" },
  ADVERTISE_URL: { flag: "advertise-url", fallback: "" },
  RATE_LIMIT_TOKEN: { flag: "rate-limit-token", fallback: String(DEFAULT_CLIENT_LIMITS.token.perSecond) },
  RATE_LIMIT_ADDRESS: {
    flag: "rate-limit-address",
    fallback: String(DEFAULT_CLIENT_LIMITS.address.perSecond),
  },
  SOCKETS_PER_TOKEN: { flag: "sockets-per-token", fallback: String(DEFAULT_CLIENT_LIMITS.socketsPerToken) },
  SOCKETS_PER_ADDRESS: {
    flag: "sockets-per-address",
    fallback: String(DEFAULT_CLIENT_LIMITS.connectionsPerAddress),
  },
  LOG_LEVEL: { flag: "log-level", fallback: "info" },
} as const;
type SettingName = keyof typeof SETTINGS;

export const REGION_FLAGS = Object.fromEntries(
  Object.values(SETTINGS).map((s) => [s.flag, { type: "string" as const }]),
);

/** Flags win over the environment, which wins over the defaults. */
export function loadRegionConfig(argv: string[], env: NodeJS.ProcessEnv): RegionConfig {
  let flags: Record<string, string | undefined>;
  try {
    flags = parseArgs({ args: argv, options: REGION_FLAGS, allowPositionals: false, strict: true })
      .values as Record<string, string | undefined>;
  } catch (error) {
    throw new ConfigError("arguments", (error as Error).message);
  }
  const raw = (name: SettingName): string =>
    flags[SETTINGS[name].flag] ?? env[name] ?? SETTINGS[name].fallback;
  const setOrNull = (name: SettingName): string | null => raw(name).trim() || null;

  const bootSourceUrl = parseSourceUrl(raw("BOOT_SOURCE_URL"));
  return {
    port: parseInteger("PORT", raw("PORT"), 0, 65535),
    host: parseHost(raw("HOST")),
    dataDir: path.resolve(raw("DATA_DIR")),
    databaseUrl: parseDatabaseUrl(setOrNull("DATABASE_URL")),
    redisUrl: parseRedisUrl(setOrNull("REDIS_URL")),
    bootSourceUrl,
    bootSourceUrlGiven: (flags[SETTINGS.BOOT_SOURCE_URL.flag] ?? env.BOOT_SOURCE_URL) !== undefined,
    bootSourceKeyring: loadKeyring(setOrNull("BOOT_SOURCE_KEYRING"), bootSourceUrl),
    adminToken: parseSecret("ADMIN_TOKEN", setOrNull("ADMIN_TOKEN")),
    rackSecret: parseSecret("RACK_SECRET", setOrNull("RACK_SECRET")),
    importSchedule: parseCron("IMPORT_SCHEDULE", raw("IMPORT_SCHEDULE")),
    rackSyncSchedule: parseCron("RACK_SYNC_SCHEDULE", raw("RACK_SYNC_SCHEDULE")),
    verifySchedule: parseCron("VERIFY_SCHEDULE", raw("VERIFY_SCHEDULE")),
    downloadConcurrency: parseInteger("DOWNLOAD_CONCURRENCY", raw("DOWNLOAD_CONCURRENCY"), 1, 64),
    downloadMinRate: parseMinRate(raw("DOWNLOAD_MIN_RATE")),
    leaderLeaseMs: parseDuration("LEADER_LEASE", raw("LEADER_LEASE"), 1000, 600_000),
    advertiseUrl: parseAdvertiseUrl(setOrNull("ADVERTISE_URL")),
    limits: {
      ...DEFAULT_CLIENT_LIMITS,
      token: rate(parseInteger("RATE_LIMIT_TOKEN", raw("RATE_LIMIT_TOKEN"), 1, 100_000)),
      address: rate(parseInteger("RATE_LIMIT_ADDRESS", raw("RATE_LIMIT_ADDRESS"), 1, 100_000)),
      socketsPerToken: parseInteger("SOCKETS_PER_TOKEN", raw("SOCKETS_PER_TOKEN"), 1, 100_000),
      connectionsPerAddress: parseInteger("SOCKETS_PER_ADDRESS", raw("SOCKETS_PER_ADDRESS"), 1, 100_000),
    },
    logLevel: parseLogLevel(raw("LOG_LEVEL")),
  };
}

export function parseInteger(setting: string, value: string, min: number, max: number): number {
  const trimmed = value.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) < min || Number(trimmed) > max) {
    throw new ConfigError(setting, `"${value}" is not a whole number from ${min} to ${max}`);
  }
  return Number(trimmed);
}

/**
 * DOWNLOAD_MIN_RATE: `RATE[/WINDOWs]`, the rate as a bandwidth cap is written (`1KiB`, `512B/s`,
 * `10KB`, `8kbit/s`: parseBandwidth's units, B a byte and b a bit) over a window of 60 s unless
 * given (`10KB/30s`), or `off` / `0`.
 */
export function parseMinRate(value: string): { bytesPerSecond: number; windowMs: number } {
  const text = value.trim();
  if (/^(off|0)$/i.test(text)) return { bytesPerSecond: 0, windowMs: 60_000 };
  const match = /^(.*?)(?:\/(\d+)s)?$/.exec(text)!;
  const windowS = match[2] === undefined ? 60 : Number(match[2]);
  let amount = NaN;
  try {
    amount = parseBandwidth(match[1]!) ?? NaN;
  } catch {
    // said below
  }
  if (!Number.isFinite(amount) || amount < 1 || windowS < 1 || windowS > 3600) {
    throw new ConfigError(
      "DOWNLOAD_MIN_RATE",
      `"${value}" is not a rate such as 1KiB, 10KB/30s (window 1 to 3600 s) or off`,
    );
  }
  return { bytesPerSecond: Math.floor(amount), windowMs: windowS * 1000 };
}

/** `15s`, `1500ms` or `2m` (a bare number is seconds), from `min` to `max` ms. */
export function parseDuration(setting: string, value: string, min: number, max: number): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(value.trim());
  const ms = match ? Number(match[1]) * (match[2] === "ms" ? 1 : match[2] === "m" ? 60_000 : 1000) : NaN;
  if (!(ms >= min && ms <= max)) {
    throw new ConfigError(
      setting,
      `"${value}" is not a duration from ${min / 1000}s to ${max / 1000}s (e.g. 15s)`,
    );
  }
  return ms;
}

function parseHost(value: string): string {
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(value))
    throw new ConfigError("HOST", `"${value}" is not a host name or address`);
  return value;
}

export function parseCron(setting: string, pattern: string): string {
  try {
    new Cron(pattern, { paused: true }).stop();
  } catch (error) {
    throw new ConfigError(setting, `"${pattern}" is not a cron pattern (${(error as Error).message})`);
  }
  return pattern;
}

export function parseSourceUrl(value: string, setting = "BOOT_SOURCE_URL"): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      setting,
      `"${value}" is not a valid http(s) URL (a boot source is http://… or https://…, or file://… for a local mirror)`,
    );
  }
  if (!["http:", "https:", "file:"].includes(url.protocol)) {
    throw new ConfigError(
      setting,
      `"${value}" is not a valid http(s) URL: a boot source is http://… or https://… (or file://… for a local mirror), not ${url.protocol}//`,
    );
  }
  // simplestreams paths are relative to the source: without the trailing slash the last segment would be lost.
  return url.href.endsWith("/") ? url.href : `${url.href}/`;
}

export function parseDatabaseUrl(value: string | null): string | null {
  if (value === null) return null;
  if (!/^postgres(ql)?:\/\//.test(value)) {
    throw new ConfigError("DATABASE_URL", "must start with postgres:// (leave it unset for SQLite)");
  }
  return value;
}

/** ADVERTISE_URL: an http(s) origin, maybe with a path prefix (a reverse proxy); no trailing slash. */
export function parseAdvertiseUrl(value: string | null): string | null {
  if (value === null) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError("ADVERTISE_URL", `"${value}" is not a URL`);
  }
  if (!["http:", "https:"].includes(url.protocol) || url.search || url.hash || url.username) {
    throw new ConfigError(
      "ADVERTISE_URL",
      `"${value}" must be an http:// or https:// URL without query or credentials, e.g. http://10.0.0.11:5240`,
    );
  }
  return url.href.replace(/\/+$/, "");
}

function parseRedisUrl(value: string | null): string | null {
  if (value === null) return null;
  if (!/^rediss?:\/\//.test(value))
    throw new ConfigError("REDIS_URL", "must start with redis:// or rediss://");
  return value;
}

/** A configured secret is hashed without salt, like the generated ones: so it must be long. */
export const MIN_SECRET_LENGTH = 32;

function parseSecret(setting: string, value: string | null): string | null {
  if (value === null) return null;
  if (value.length > 256 || /\s/.test(value)) {
    throw new ConfigError(setting, "must be at most 256 characters with no white space");
  }
  if (value.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(
      setting,
      `is ${value.length} characters; use at least ${MIN_SECRET_LENGTH} random ones (e.g. \`openssl rand -base64 32\`), or leave it unset to have one generated`,
    );
  }
  return value;
}

function parseLogLevel(value: string): string {
  const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  if (!levels.includes(value))
    throw new ConfigError("LOG_LEVEL", `"${value}" is not one of ${levels.join(", ")}`);
  return value;
}

/**
 * The bundled Ubuntu key is the default only for the default source: a local mirror is usually
 * unsigned, and verifying it against Canonical's key would always fail. `none` forces unsigned.
 */
function loadKeyring(file: string | null, sourceUrl: string): string | null {
  if (file === "none") return null;
  if (file === null && sourceUrl !== DEFAULT_SOURCE_URL) return null;
  const keyFile = file ?? BUNDLED_KEYRING_PATH;
  return readKeyringFile(keyFile, "BOOT_SOURCE_KEYRING");
}

export function readKeyringFile(file: string, setting: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(
      setting,
      `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  if (text.includes("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
    throw new ConfigError(setting, `${file}: ${PRIVATE_KEYRING_MESSAGE}`);
  }
  if (!text.includes("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
    throw new ConfigError(setting, `${file} is not an armored OpenPGP public key`);
  }
  return text;
}
