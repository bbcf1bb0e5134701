import { Agent, type Dispatcher } from "undici";

export type DownloadAgentOptions = {
  /** Give up on a TCP/TLS connect after this long (ms). */
  connectTimeoutMs?: number;
  /** Connections per origin; DOWNLOAD_CONCURRENCY is a sensible value. */
  connections?: number;
  /** How long an idle keep-alive connection is kept for the next file (ms). */
  keepAliveTimeoutMs?: number;
};

/**
 * A keep-alive dispatcher for downloadFile, meant to be created once per importer or rack agent and
 * shared by all its downloads (the connect timeout lives here: undici sets it per connection, not per
 * request). It follows no redirect: downloadFile follows them itself and checks every hop
 * (`redirectRefusal`: the source's own origin only). Close it when done.
 */
export function createDownloadAgent(options: DownloadAgentOptions = {}): Dispatcher {
  const agent = new Agent({
    connect: { timeout: options.connectTimeoutMs ?? 10_000 },
    connections: options.connections ?? null,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 10_000,
  });
  return agent;
}
