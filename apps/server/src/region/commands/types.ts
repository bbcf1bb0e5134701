import type { CommandName, CommandPayload, CommandResults } from "@bootstream/protocol";
import type { Actor, RegionContext } from "../context";

export type Handler<N extends CommandName> = (
  payload: CommandPayload<N>,
  actor: Actor,
  region: RegionContext,
) => Promise<CommandResults[N]>;

export type Handlers = { [N in CommandName]: Handler<N> };
