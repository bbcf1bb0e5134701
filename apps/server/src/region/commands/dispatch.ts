import { randomUUID } from "node:crypto";
import {
  COMMAND_NAMES,
  CommandError,
  READ_ONLY_COMMANDS,
  commandSchemas,
  isCommandName,
  type Ack,
  type CommandName,
} from "@bootstream/protocol";
import type { z } from "zod";
import type { Actor, RegionContext } from "../context";
import type { Handler, Handlers } from "./types";

export type AnyAck = Ack<Record<string, unknown>>;

const fail = (code: CommandError["code"], message: string, extra: Record<string, unknown> = {}): AnyAck => ({
  ok: false,
  error: new CommandError(code, message, extra).toBody(),
});

export function describeZodError(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "payload"}: ${issue.message}`)
    .join("; ");
}

/** Answered by any node from its own live state; every other command runs on the leader. */
const LOCAL_COMMANDS: ReadonlySet<CommandName> = new Set(["state:get", "audit:list"]);

type Forward = (name: CommandName, payload: unknown, actor: Actor) => Promise<AnyAck>;

/**
 * The one path every command takes, from a socket or from HTTP: known name → role → schema →
 * handler. A handler either returns its result or throws a CommandError; anything else is a bug,
 * logged with a reference the person can quote.
 */
export class CommandRunner {
  private routing: { isLeader: () => boolean; forward: Forward } | null = null;

  constructor(
    private readonly handlers: Handlers,
    private readonly region: RegionContext,
  ) {}

  /** On a cluster, a follower hands state-changing commands to the leader. */
  route(isLeader: () => boolean, forward: Forward): void {
    this.routing = { isLeader, forward };
  }

  async run(name: string, payload: unknown, actor: Actor): Promise<AnyAck> {
    if (!isCommandName(name)) {
      return fail(
        "not-found",
        `unknown command "${name.slice(0, 64)}"; commands are ${COMMAND_NAMES.join(", ")}`,
      );
    }
    if (!READ_ONLY_COMMANDS.has(name) && actor.role !== "admin") {
      return fail(
        "forbidden",
        `"${name}" changes state and needs an admin token; "${actor.name}" is a viewer`,
      );
    }
    const parsed = commandSchemas[name].safeParse(payload);
    if (!parsed.success) return fail("invalid", `${name}: ${describeZodError(parsed.error)}`);
    if (this.routing && !this.routing.isLeader() && !LOCAL_COMMANDS.has(name)) {
      return this.routing.forward(name, parsed.data, actor);
    }
    try {
      const handler = this.handlers[name] as Handler<CommandName>;
      const result = await handler(parsed.data as never, actor, this.region);
      return { ok: true, ...(result as Record<string, unknown>) };
    } catch (error) {
      if (error instanceof CommandError) return { ok: false, error: error.toBody() };
      const ref = randomUUID().slice(0, 8);
      this.region.log.error({ err: error, command: name, by: actor.name, ref }, "command failed");
      return fail(
        "internal",
        `${name} failed inside the region (ref ${ref}); the region log has the details`,
      );
    }
  }
}
