import { ConfigError, loadRegionConfig } from "../config";
import { createLogger } from "../log";
import { startRegion } from "../region/region";

export async function regionCommand(argv: string[]): Promise<number> {
  let config;
  try {
    config = loadRegionConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`bootstream region: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const log = createLogger(config.logLevel, "region");
  // A bug in a fire-and-forget path must be seen, not take the region (and its import) down.
  process.on("unhandledRejection", (reason) => log.error({ err: reason }, "unhandled rejection"));
  const region = await startRegion(config, log).catch((error: unknown) => {
    log.fatal({ err: error }, "region failed to start");
    process.stderr.write(`bootstream region: cannot start: ${(error as Error).message}\n`);
    return null;
  });
  // Startup may fail after the port was opened: exit rather than linger half-started and "healthy".
  if (!region) process.exit(1);
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, "shutting down");
      region.close().then(
        () => resolve(0),
        (error: unknown) => {
          log.error({ err: error }, "shutdown failed");
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
