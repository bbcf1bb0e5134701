import type { RegionConfig } from "../../apps/server/src/config";
import type { RegionHandle } from "../../apps/server/src/region/region";
import { AuditEntity } from "../../apps/server/src/region/db/entities";
import { TEST_ADMIN_TOKEN, TEST_RACK_SECRET } from "./region";

/** A schedule that never fires in a test's lifetime (the last second of the year). */
const NEVER = "59 59 23 31 12 *";

/**
 * The config of a region a test starts in process (`startRegion` of apps/server/src/region/region.ts):
 * loopback on an ephemeral port, SQLite in `dataDir`, no Redis, an unreachable source, no schedule
 * that fires, silent; `overrides` on top.
 */
export function regionConfig(dataDir: string, overrides: Partial<RegionConfig> = {}): RegionConfig {
  return {
    port: 0,
    host: "127.0.0.1",
    dataDir,
    databaseUrl: null,
    redisUrl: null,
    bootSourceUrl: "http://127.0.0.1:9/unreachable/",
    bootSourceKeyring: null,
    adminToken: TEST_ADMIN_TOKEN,
    rackSecret: TEST_RACK_SECRET,
    importSchedule: NEVER,
    rackSyncSchedule: NEVER,
    downloadConcurrency: 2,
    logLevel: "silent",
    ...overrides,
  };
}

/**
 * Caps the region's own SQLite file at the pages it has (PRAGMA max_page_count holds for the one
 * connection: only an in-process test reaches it) and makes the region write audit rows until one
 * fails for want of room. Returns that failure (null if 20,000 writes fitted) and release(), which
 * lifts the cap: call it in a `finally`.
 */
export async function fillDatabase(
  region: RegionHandle,
): Promise<{ failure: unknown; release(): Promise<void> }> {
  const db = region.context.db;
  const release = async () => void (await db.source.query("PRAGMA max_page_count = 1073741823"));
  const [{ page_count: pages }] = (await db.source.query("PRAGMA page_count")) as [{ page_count: number }];
  await db.source.query(`PRAGMA max_page_count = ${pages}`);
  try {
    let failure: unknown = null;
    for (let i = 0; i < 20_000 && failure === null; i++) {
      await db
        .write((m) =>
          m.insert(AuditEntity, {
            at: new Date().toISOString(),
            by: "filler",
            action: "fill",
            detail: "x".repeat(200),
          }),
        )
        .catch((error: unknown) => (failure = error));
    }
    return { failure, release };
  } catch (error) {
    await release();
    throw error;
  }
}
