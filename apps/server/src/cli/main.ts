import { clientCommands, isRemoteFailure } from "./client-commands";
import { HELP, UsageError } from "./usage";

type Command = (argv: string[]) => Promise<number>;

// Process commands are loaded lazily: `bootstream status` should not pay for TypeORM and Koa.
const processes: Record<string, () => Promise<Command>> = {
  region: async () => (await import("./region-command")).regionCommand,
  rack: async () => (await import("./rack-command")).rackCommand,
  demo: async () => (await import("./demo-command")).demoCommand,
  mirror: async () => (await import("../mirror")).mirrorCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(HELP);
    return name ? 0 : 2;
  }
  try {
    const process_ = processes[name];
    if (process_) return await (await process_())(rest);
    const client = clientCommands[name];
    if (!client) throw new UsageError(`unknown command "${name}"; see bootstream --help`);
    await client(rest);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`bootstream ${name}: ${error.message}\n`);
      return 2;
    }
    if (isRemoteFailure(error)) {
      process.stderr.write(`bootstream ${name}: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`bootstream ${name}: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
