import { ConfigError, loadRegionConfig } from "../config";
import { createLogger } from "../log";
import { startRegion, takenBackBy } from "../region/region";

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
  // An unhandled rejection is a bug that may have left an import or a write half done: log it with
  // its stack and exit non-zero, so a supervisor restarts the region into recover() (pino writes
  // stdout synchronously, so the line is out before the exit).
  process.on("unhandledRejection", (reason) => {
    log.fatal({ err: reason }, "unhandled rejection");
    process.exit(1);
  });
  const region = await startRegion(config, log).catch((error: unknown) => {
    log.fatal({ err: error }, "region failed to start");
    const code = (error as { code?: unknown }).code;
    const hint =
      code === "EADDRINUSE"
        ? " (another process holds that port: stop it, or give --port / PORT)"
        : code === "EACCES"
          ? " (not allowed to listen there: a port below 1024 needs privileges)"
          : "";
    process.stderr.write(`bootstream region: cannot start: ${(error as Error).message}${hint}\n`);
    const taken = takenBackBy(error);
    if (taken && taken.removed.length > 0)
      process.stderr.write(
        `bootstream region: removed what this start had created: ${taken.removed.join(", ")}\n`,
      );
    if (taken && taken.kept.length > 0)
      process.stderr.write(
        `bootstream region: left what this start created but could not remove (not empty, or not allowed): ${taken.kept.join(", ")}\n`,
      );
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
