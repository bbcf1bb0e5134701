import type { ErrorBody } from "./errors";
import type { CommandName, CommandPayload, CommandResults } from "./commands";
import type {
  AuditEntry,
  HealthState,
  ImageState,
  ImportState,
  PresenceUser,
  RackState,
  Selection,
  Settings,
  Snapshot,
  SourceState,
  VerifyState,
} from "./state";

export type Ack<R> = ({ ok: true } & R) | { ok: false; error: ErrorBody };

/** Payloads of server → client events, without `seq`, which the event bus adds. */
export type EventPayloads = {
  snapshot: Snapshot;
  image: { image: ImageState };
  "image:removed": { id: string };
  selection: { selection: Selection; by: string };
  settings: { settings: Settings; by: string };
  source: { source: SourceState };
  import: { import: ImportState };
  /** Progress and outcome of `store:verify` (coalesced like import progress). */
  verify: { verify: VerifyState };
  rack: { rack: RackState };
  /** Added to the contract: a rack forgotten with rack:remove. */
  "rack:removed": { name: string };
  presence: { users: PresenceUser[] };
  audit: { entry: AuditEntry };
  /**
   * Added to the contract: the health of the node the client is connected to changed. Per node, so it
   * carries no `seq` (it is not one of the cluster's numbered events) and applies whenever it comes.
   */
  health: { health: HealthState };
};
export type EventName = keyof EventPayloads;
export type Sequenced<T> = T & { seq: number };

export type ServerToClientEvents = {
  [E in Exclude<EventName, "health">]: (payload: Sequenced<EventPayloads[E]>) => void;
} & {
  health: (payload: EventPayloads["health"]) => void;
  /** Sent when a command arrives without an ack callback, so the mistake is visible rather than silent. */
  "command:error": (payload: { command: string; error: ErrorBody }) => void;
};

export type ClientToServerEvents = {
  [N in CommandName]: (payload: CommandPayload<N>, ack: (answer: Ack<CommandResults[N]>) => void) => void;
};
