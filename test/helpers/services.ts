import { createConnection } from "node:net";
import { randomBytes } from "node:crypto";
import pg from "pg";

export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export type Availability = { ok: true } | { ok: false; reason: string };

/**
 * A suite that needs a service: in CI (CI=true) a missing service fails the run; on a developer's
 * machine the suite is skipped, loudly, with the reason.
 */
export function gate(
  service: string,
  availability: Availability,
): { skip: boolean; mustFail: string | null } {
  if (availability.ok) return { skip: false, mustFail: null };
  const message = `${service} is not available (${availability.reason})`;
  if (process.env.CI === "true" || process.env.CI === "1") return { skip: false, mustFail: message };
  console.warn(`\n!!! SKIPPED: ${message}. These tests did not run. Start the service or run .ci/run.\n`);
  return { skip: true, mustFail: null };
}

/** One availability for several services: ok when every one is, else every reason. */
export function all(...availabilities: Availability[]): Availability {
  const reasons = availabilities.flatMap((a) => (a.ok ? [] : [a.reason]));
  return reasons.length === 0 ? { ok: true } : { ok: false, reason: reasons.join("; ") };
}

/** The gate of a suite on the machine's PostgreSQL and Redis. */
export async function gatePostgresAndRedis(): Promise<{ skip: boolean; mustFail: string | null }> {
  const [postgres, redis] = await Promise.all([probePostgres(), probeRedis()]);
  return gate("PostgreSQL and Redis", all(postgres, redis));
}

/**
 * The machine's Redis at database `index`: each services test file that uses it takes its own
 * index, so two engineers' runs (or a crashed run's leftovers) never share streams or keys.
 */
export function redisDatabase(index: number): string {
  const url = new URL(REDIS_URL);
  url.pathname = `/${index}`;
  return url.href;
}

export async function probePostgres(): Promise<Availability> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: `${POSTGRES_URL}: ${(error as Error).message}` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function probeRedis(): Promise<Availability> {
  const url = new URL(REDIS_URL);
  return new Promise((resolve) => {
    const socket = createConnection({ host: url.hostname, port: Number(url.port || 6379) });
    const done = (result: Availability) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(3000, () => done({ ok: false, reason: `${REDIS_URL}: timeout` }));
    socket.once("error", (error) => done({ ok: false, reason: `${REDIS_URL}: ${error.message}` }));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) =>
      done(data.toString().startsWith("+PONG") ? { ok: true } : { ok: false, reason: "no PONG" }),
    );
  });
}

/** A throwaway database on the machine's PostgreSQL, so runs never see each other's tables. */
export async function createScratchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `bootstream_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
