import { createScratchDatabase, redisDatabase } from "./services";
import { removeDir, startRegion, type RegionProcess } from "./region";
import { storeFiles, sha256File } from "./store";

export type ClusterOptions = {
  nodes: number;
  adminToken: string;
  /**
   * Which Redis: a database index on the machine's Redis (each test file its own, so runs never
   * share streams or keys), or the URL of a Redis of the test's own. Taken: 1 cluster, 2 failover,
   * 3 racks-anywhere, 4 peers, 5 cluster-faults (redis-outage runs its own Redis).
   */
  redis: { db: number } | { url: string };
  /** A database the test owns (its own PostgreSQL, left to it); by default a scratch one, dropped by stop(). */
  databaseUrl?: string;
  /** LEADER_LEASE, in seconds (the region's default when absent). */
  leaseSeconds?: number;
  /** More environment for every node (BOOT_SOURCE_URL, ...). */
  env?: Record<string, string>;
  /** Run against the first node once it is up, before any other starts (settings they must start with). */
  afterFirst?: (first: RegionProcess) => Promise<void>;
};

export type Cluster = {
  /** The database every node uses. */
  databaseUrl: string;
  /** The env every node was started with. */
  env: Record<string, string>;
  /** The nodes started with the cluster, in the order they listened (the first one alone first). */
  regions: RegionProcess[];
  /** Starts one more node with the cluster's env and admin token (a late node, a restart on `dataDir`). */
  start(options?: { dataDir?: string }): Promise<RegionProcess>;
  /**
   * Stops every node it started (a paused one is woken first), removes their data dirs, drops the
   * scratch database.
   */
  stop(): Promise<void>;
};

/**
 * Region nodes on one PostgreSQL database and one Redis, each with its own DATA_DIR, as the
 * operations guide sets them up. The first node starts alone and migrates the database; the others
 * start together once it listens, on a migrated database: every cluster test goes through here, so
 * none of them waits on another node's migration lock on a loaded machine (nodes started at once on
 * a fresh database are test/services/migration-lock.test.ts's subject).
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const scratch = options.databaseUrl === undefined ? await createScratchDatabase() : null;
  const databaseUrl = options.databaseUrl ?? scratch!.url;
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: "db" in options.redis ? redisDatabase(options.redis.db) : options.redis.url,
    ...(options.leaseSeconds === undefined ? {} : { LEADER_LEASE: `${options.leaseSeconds}s` }),
    ...options.env,
  };
  const started: RegionProcess[] = [];
  const start = async (more: { dataDir?: string } = {}) => {
    const region = await startRegion({ env, adminToken: options.adminToken, dataDir: more.dataDir });
    started.push(region);
    return region;
  };
  const regions: RegionProcess[] = [];
  const cluster: Cluster = {
    databaseUrl,
    env,
    regions,
    start,
    stop: async () => {
      try {
        for (const region of started) {
          if (region.child.signalCode === null && region.child.exitCode === null)
            region.child.kill("SIGCONT");
          await region.stop();
          await removeDir(region.dataDir);
        }
      } finally {
        await scratch?.drop();
      }
    },
  };
  try {
    const first = await start();
    regions.push(first);
    await options.afterFirst?.(first);
    // Every one of the others awaited (none left running unstopped if one fails), in listening order.
    const others = await Promise.allSettled(
      Array.from({ length: options.nodes - 1 }, async () => regions.push(await start())),
    );
    const failed = others.find((result) => result.status === "rejected");
    if (failed) throw failed.reason;
  } catch (error) {
    await cluster.stop().catch(() => undefined);
    throw error;
  }
  return cluster;
}

export async function role(region: RegionProcess): Promise<string | null> {
  try {
    const response = await fetch(`${region.url}/healthz`, { signal: AbortSignal.timeout(2000) });
    return ((await response.json()) as { role: string }).role;
  } catch {
    return null;
  }
}

/** Polls /healthz until exactly one of `regions` says it leads and the rest follow; returns it. */
export async function oneLeader(regions: RegionProcess[], timeoutMs: number): Promise<RegionProcess> {
  const deadline = Date.now() + timeoutMs;
  let roles: (string | null)[] = [];
  while (Date.now() < deadline) {
    roles = await Promise.all(regions.map(role));
    const leaders = regions.filter((_, i) => roles[i] === "leader");
    if (leaders.length === 1 && roles.every((r) => r === "leader" || r === "follower")) return leaders[0]!;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no single leader within ${timeoutMs} ms: ${roles.join(", ")}`);
}

/** Which of `shas` the store under `dataDir` lacks or holds with the wrong bytes (each file re-hashed). */
export async function unverified(dataDir: string, shas: Iterable<string>): Promise<string[]> {
  const files = await storeFiles(dataDir);
  const bad: string[] = [];
  for (const sha of shas) {
    const file = files.get(sha);
    if (!file || (await sha256File(file)) !== sha) bad.push(sha);
  }
  return bad;
}
