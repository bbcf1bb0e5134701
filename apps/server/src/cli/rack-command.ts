import { createLogger } from "../log";
import { RackAgent } from "../rack/agent";
import { loadRackConfig, RACK_USAGE } from "../rack/config";

/** `bootstream rack`: runs one rack controller agent until SIGTERM or SIGINT. */
export async function rackCommand(argv: string[]): Promise<number> {
  // A bad flag throws UsageError, which main prints as one line and turns into exit 2.
  const config = loadRackConfig(argv, process.env);
  if (config === "help") {
    process.stdout.write(RACK_USAGE);
    return 0;
  }
  const log = createLogger(config.logLevel, "rack");
  let agent: RackAgent;
  try {
    agent = await RackAgent.start(config, log);
  } catch (error) {
    log.fatal({ err: error }, "rack agent failed to start");
    process.stderr.write(`bootstream rack: cannot start: ${(error as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    const watchesParent = process.env.BOOTSTREAM_EXIT_WITH_PARENT === "stdin";
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      // A stdin being read keeps the process alive after the agent stopped (a demo stopped with
      // Ctrl-C or SIGTERM would wait on its racks for ever): let go of it.
      if (watchesParent) process.stdin.destroy();
      agent.close(signal).then(
        () => resolve(0),
        (error: unknown) => {
          log.error({ err: error }, "shutdown failed");
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    // Started by a parent that holds our stdin (the demo): when that pipe closes, the parent is gone
    // (any way it died, kill -9 included), and so are we.
    if (watchesParent) {
      const orphaned = () => {
        log.warn("the parent process is gone: stopping");
        stop("SIGTERM");
      };
      process.stdin.once("end", orphaned).once("error", orphaned).resume();
    }
  });
}
