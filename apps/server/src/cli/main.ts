import { CommandError } from "@bootstream/protocol";
import { clientCommands, isRemoteFailure, rackRemove } from "./client-commands";
import { COMMAND_HELP, CommandFailure, HELP, UsageError, wantsHelp } from "./usage";

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
  // `rack remove NAME` is a client command; `rack --region …` runs the agent (which has its own --help).
  const key = name === "rack" && rest[0] === "remove" ? "rack remove" : name;
  const help = COMMAND_HELP[key];
  if (help && wantsHelp(rest)) {
    process.stdout.write(help);
    return 0;
  }
  try {
    if (key === "rack remove") {
      await rackRemove(rest.slice(1));
      return 0;
    }
    if (name === "verify") return await (await import("./verify-command")).verifyCommand(rest);
    if (name === "admin-token") {
      await (await import("./admin-token")).adminTokenCommand(rest);
      return 0;
    }
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
    if (isRemoteFailure(error) || error instanceof CommandFailure) {
      // A refusal over the socket (verify, status --watch) reads as one over HTTP: "code: message".
      const said = error instanceof CommandError ? `${error.code}: ${error.message}` : error.message;
      process.stderr.write(`bootstream ${name}: ${said}\n`);
      return 1;
    }
    process.stderr.write(`bootstream ${name}: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
