import path from "node:path";
import { parseArgs } from "node:util";
import { bandwidthProblem, parseBandwidth } from "@bootstream/images/present";
import { rackNameSchema } from "@bootstream/protocol";
import { ConfigError, DEFAULT_VERIFY_SCHEDULE, parseCron, parseInteger } from "../config";
import { UsageError } from "../cli/usage";

export { DEFAULT_VERIFY_SCHEDULE };

export type RackCredential = { kind: "token" | "secret"; value: string };

export type RackConfig = {
  /** The region's base URL without a trailing slash, e.g. `http://region:5240` or `https://host/bootstream`. */
  regionUrl: string;
  name: string;
  /** A `rack` token of this rack's own (RACK_TOKEN), or the weaker site-wide RACK_SECRET. */
  credential: RackCredential;
  dataDir: string;
  syncSchedule: string;
  /** --verify-schedule: when the agent re-hashes its own store (croner; weekly by default). */
  verifySchedule?: string;
  downloadConcurrency: number;
  /** --bandwidth-limit: bytes a second for all of this rack's downloads together; null for none. */
  bandwidthLimit?: number | null;
  logLevel: string;
};

// Each setting: its --flag, its environment variable, and its default (undefined: required).
const SETTINGS = {
  region: { env: "REGION_URL", fallback: undefined, hint: "the region's URL, e.g. http://region:5240" },
  name: { env: "RACK_NAME", fallback: undefined, hint: "this rack's name, unique among the racks" },
  token: { env: "RACK_TOKEN", fallback: "", hint: "" },
  secret: { env: "RACK_SECRET", fallback: "", hint: "" },
  "data-dir": { env: "DATA_DIR", fallback: undefined, hint: "where this rack keeps its images" },
  "rack-sync-schedule": { env: "RACK_SYNC_SCHEDULE", fallback: "*/5 * * * *", hint: "" },
  // Sundays at 03:00 local time: a whole store is read once a week, when boots are rare.
  "verify-schedule": { env: "VERIFY_SCHEDULE", fallback: DEFAULT_VERIFY_SCHEDULE, hint: "" },
  "download-concurrency": { env: "DOWNLOAD_CONCURRENCY", fallback: "4", hint: "" },
  "bandwidth-limit": { env: "BANDWIDTH_LIMIT", fallback: "off", hint: "" },
  "log-level": { env: "LOG_LEVEL", fallback: "info", hint: "" },
} as const;
type Flag = keyof typeof SETTINGS;

const FLAGS = {
  ...Object.fromEntries(Object.keys(SETTINGS).map((flag) => [flag, { type: "string" as const }])),
  help: { type: "boolean" as const, short: "h" },
};

export const RACK_USAGE = `usage: RACK_TOKEN=T bootstream rack --region URL --name NAME --data-dir DIR
                      [--rack-sync-schedule CRON] [--verify-schedule CRON] [--download-concurrency N] [--bandwidth-limit 50MiB/s|off] [--log-level LEVEL]
The credential: RACK_TOKEN, a rack token made for this name (bootstream token create --role rack
--name NAME), or else RACK_SECRET, the region's site-wide secret (weaker: it may register any rack).
Keep them in the environment: --token and --secret exist, but a command line is readable by every
user of the machine (/proc). Each flag may come from the environment instead: ${Object.entries(SETTINGS)
  .map(([flag, s]) => `--${flag} ${s.env}`)
  .join(", ")}.
`;

/** Flags win over the environment, which wins over the defaults. Throws UsageError naming the setting. */
export function loadRackConfig(argv: string[], env: NodeJS.ProcessEnv): RackConfig | "help" {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: argv, options: FLAGS, allowPositionals: false, strict: true }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (flags["help"] === true) return "help";

  const raw = (flag: Flag): string => {
    const { env: name, fallback, hint } = SETTINGS[flag];
    const fromFlag = flags[flag];
    // An empty value is a mistake in a unit file or a shell script, not a wish for "nothing".
    const value = (typeof fromFlag === "string" ? fromFlag : env[name])?.trim() || fallback;
    if (value === undefined) throw new UsageError(`missing --${flag} (or ${name}): ${hint}`);
    return value;
  };

  try {
    return {
      regionUrl: parseRegionUrl(raw("region")),
      name: parseName(raw("name")),
      credential: parseCredential(raw("token"), raw("secret")),
      dataDir: path.resolve(raw("data-dir")),
      syncSchedule: parseCron("RACK_SYNC_SCHEDULE", raw("rack-sync-schedule")),
      verifySchedule: parseCron("VERIFY_SCHEDULE", raw("verify-schedule")),
      downloadConcurrency: parseInteger("DOWNLOAD_CONCURRENCY", raw("download-concurrency"), 1, 64),
      bandwidthLimit: parseRackBandwidth(raw("bandwidth-limit")),
      logLevel: parseLogLevel(raw("log-level")),
    };
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

function parseRegionUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`invalid REGION_URL: "${value}" is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`invalid REGION_URL: "${value}" must be an http:// or https:// URL`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new UsageError(`invalid REGION_URL: "${value}" must have no query, fragment or credentials`);
  }
  return url.href.replace(/\/+$/, "");
}

function parseName(value: string): string {
  const parsed = rackNameSchema.safeParse(value);
  if (!parsed.success) {
    throw new UsageError(
      `invalid RACK_NAME: "${value}" must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return parsed.data;
}

function parseCredential(token: string, secret: string): RackCredential {
  if (token && secret) throw new UsageError("give RACK_TOKEN or RACK_SECRET, not both");
  if (!token && !secret) {
    throw new UsageError(
      "missing RACK_TOKEN (or --token): this rack's token, from `bootstream token create --role rack --name NAME`; or RACK_SECRET, the region's site-wide secret",
    );
  }
  const setting = token ? "RACK_TOKEN" : "RACK_SECRET";
  const value = token || secret;
  if (value.length > 256 || /\s/.test(value)) {
    throw new UsageError(`invalid ${setting}: must be at most 256 characters with no white space`);
  }
  return { kind: token ? "token" : "secret", value };
}

/** The region's rule for a cap (the same range and wording), named as the rack's setting. */
function parseRackBandwidth(value: string): number | null {
  const problem = bandwidthProblem(value);
  if (problem) throw new UsageError(`invalid BANDWIDTH_LIMIT: ${problem}`);
  return parseBandwidth(value);
}

function parseLogLevel(value: string): string {
  const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
  if (!levels.includes(value))
    throw new UsageError(`invalid LOG_LEVEL: "${value}" is not one of ${levels.join(", ")}`);
  return value;
}
