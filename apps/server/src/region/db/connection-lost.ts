import { DownloadError, SourceError } from "@bootstream/images";

// PostgreSQL SQLSTATE: class 08 connection exception, class 57 operator intervention (57P01
// admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 57014 query_canceled),
// 53300 too_many_connections. Not 53100 (disk full) nor SQLite's codes: the database is there, it
// refuses the write, and the run ends with that error (retried as a backlog).
const PG_CONNECTION = /^(08[0-9A-Z]{3}|57[0-9A-Z]{3}|53300)$/;
const NODE_CONNECTION =
  /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/;
// What node-postgres and pg-pool say when the server goes away or cannot be reached.
const CONNECTION_MESSAGE =
  /connection terminated|connection timeout|timeout exceeded when trying to connect|query read timeout|not queryable|cannot use a pool|the database system is (shutting down|starting up|in recovery)/i;

/**
 * Whether an error says PostgreSQL's connection is gone (server restarted or shut down, refused,
 * reset, timed out), as opposed to an error of the job itself or a full disk. Looks through
 * TypeORM's `driverError` and `cause`s, but never into a boot source's or a download's error: an
 * upstream that refuses a connection is the import's failure, not the database's.
 */
export function databaseConnectionLost(error: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0 && seen.size < 8) {
    const candidate = queue.shift();
    if (typeof candidate !== "object" || candidate === null || seen.has(candidate)) continue;
    seen.add(candidate);
    if (candidate instanceof SourceError || candidate instanceof DownloadError) continue;
    const { code, message, driverError, cause } = candidate as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      cause?: unknown;
    };
    if (typeof code === "string" && (PG_CONNECTION.test(code) || NODE_CONNECTION.test(code))) return true;
    if (typeof message === "string" && CONNECTION_MESSAGE.test(message)) return true;
    queue.push(driverError, cause);
  }
  return false;
}
