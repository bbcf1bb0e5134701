import { createScratchDatabase, REDIS_URL } from "./services";
import { removeDir, startRegion, type RegionProcess } from "./region";
import { storeFiles, sha256File } from "./store";

export type Cluster = {
  /** Its own database on the machine's PostgreSQL (dropped by stop()). */
  databaseUrl: string;
  /** The env every node was started with (start another node with it). */
  env: Record<string, string>;
  regions: RegionProcess[];
  /** Stops every node (a paused one is woken first), removes their data dirs, drops the database. */
  stop(): Promise<void>;
};

/**
 * Region nodes on the machine's PostgreSQL (a scratch database) and Redis, each with its own
 * DATA_DIR, as the operations guide sets them up.
 */
export async function startCluster(options: {
  nodes: number;
  adminToken: string;
  env?: Record<string, string>;
}): Promise<Cluster> {
  const database = await createScratchDatabase();
  const env = { DATABASE_URL: database.url, REDIS_URL, ...options.env };
  const regions: RegionProcess[] = [];
  const cluster: Cluster = {
    databaseUrl: database.url,
    env,
    regions,
    stop: async () => {
      for (const region of regions) {
        if (region.child.signalCode === null && region.child.exitCode === null) region.child.kill("SIGCONT");
        await region.stop();
        await removeDir(region.dataDir);
      }
      await database.drop();
    },
  };
  try {
    // The first node migrates alone: the others would wait for its migration lock with a query
    // timeout of max(lease, 5 s), which a loaded machine can outlast (database.ts).
    regions.push(await startRegion({ env, adminToken: options.adminToken }));
    regions.push(
      ...(await Promise.all(
        Array.from({ length: options.nodes - 1 }, () => startRegion({ env, adminToken: options.adminToken })),
      )),
    );
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
