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
  // One handler per signal from before the start to the stop: a stop asked for while the region
  // starts (systemd stopping it at once) waits for the start to end, then shuts down cleanly. (A
  // listener removed and added again would drop a signal node has taken but not yet dispatched.)
  let asked: string | null = null;
  let onStop: ((signal: string) => void) | null = null;
  const handlers = (["SIGTERM", "SIGINT"] as const).map((signal) => {
    const handler = () => {
      // The first stops; a second signal, with the handlers gone, kills as it would by default.
      for (const [name, h] of handlers) process.off(name, h);
      if (onStop) onStop(signal);
      else asked = signal;
    };
    process.on(signal, handler);
    return [signal, handler] as const;
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
    if (asked !== null) return stop(asked);
    onStop = stop;
  });
}
