// The typed Socket.IO client used by the dashboard and the CLI.
//
// It keeps one folded ClientState (see ./fold), follows the connection through reconnects, turns
// command acks into promises (typed results, CommandError on refusal or timeout) and repairs the state
// with `state:get` when it sees a gap in `seq`. Framework-free: no DOM, no Svelte, works under Node.

import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type { CommandName, CommandPayload, CommandResults } from "./commands";
import { CommandError, ERROR_CODES, type ErrorBody, type ErrorCode } from "./errors";
import type {
  Ack,
  ClientToServerEvents,
  EventName,
  EventPayloads,
  Sequenced,
  ServerToClientEvents,
} from "./events";
import {
  applySnapshot,
  AUDIT_LIMIT,
  AUDIT_PAGE_MAX,
  foldEvent,
  initialState,
  withAuditEntries,
  withCatalogue,
  withSelection,
  type ClientState,
} from "./fold";

export * from "./fold";
export { degradedText } from "./health";
export { CommandError } from "./errors";
export type { ErrorCode } from "./errors";

export type ClientStatus = "connecting" | "connected" | "reconnecting" | "refused" | "closed";

/** What a listener is told changed: a server event's name, or one of the client's own changes. */
export type ClientChange = EventName | "state:get" | "catalogue" | "audit:list" | "status";
export type ClientListener = (change: ClientChange, state: ClientState) => void;

export type BootstreamSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export type ClientOptions = {
  /** The region's base URL, e.g. `http://127.0.0.1:5240` (the dashboard passes its own origin). */
  url: string;
  token: string;
  /** Extra socket.io-client options (path, transports, reconnection delays…). */
  io?: Partial<ManagerOptions & SocketOptions>;
  /** How long a command waits for its ack before it fails with a timeout (code `internal`). */
  commandTimeoutMs?: number;
  /** Fetch `catalogue:get` after every snapshot and every `source` event (the dashboard wants it). */
  catalogue?: boolean;
  /** Fetch `audit:list` with this limit after every snapshot (true: AUDIT_LIMIT). */
  audit?: boolean | number;
};

export type CommandOptions = { timeoutMs?: number };

export type BootstreamClient = {
  /** The folded state; a new object after every change (never mutated in place). */
  readonly state: ClientState;
  readonly status: ClientStatus;
  /** The last connection error's message (`unauthorized`, `xhr poll error`…), cleared on connect. */
  readonly error: string | null;
  /** The underlying socket, once `connect()` was called. */
  readonly socket: BootstreamSocket | null;
  /**
   * Connects and resolves with the state after the first snapshot. Rejects with an Error whose
   * message is the `connect_error` message (`unauthorized` for a wrong token); the socket keeps
   * retrying after a network error (status `reconnecting`) but not after a refusal (status `refused`).
   */
  connect(): Promise<ClientState>;
  /** Calls `listener` after each change of state or status; returns the unsubscribe function. */
  subscribe(listener: ClientListener): () => void;
  /**
   * Runs a command. Resolves with its ok-result (without `ok`); rejects with a CommandError carrying the
   * contract code (extra fields of the error, e.g. `selection` on `conflict`, are in `.extra`), or code
   * `internal` with `.extra.timeout === true` when no ack came within the timeout.
   */
  command<N extends CommandName>(
    name: N,
    payload: CommandPayload<N>,
    options?: CommandOptions,
  ): Promise<CommandResults[N]>;
  /** Replaces the state with a fresh `state:get` (done on its own when a `seq` gap shows). */
  refresh(): Promise<void>;
  close(): void;
};

// Every server → client event the fold knows; a Record, so a new event in EventPayloads fails to compile here.
const FOLDED_EVENTS: Record<EventName, true> = {
  snapshot: true,
  image: true,
  "image:removed": true,
  verify: true,
  selection: true,
  settings: true,
  source: true,
  import: true,
  rack: true,
  "rack:removed": true,
  presence: true,
  audit: true,
  health: true,
};
const SERVER_EVENTS = Object.keys(FOLDED_EVENTS) as EventName[];

const isErrorCode = (value: unknown): value is ErrorCode =>
  typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value);

/** Turns the `error` of a `{ ok: false }` ack into a CommandError (unknown codes become `internal`). */
export function toCommandError(body: unknown): CommandError {
  const error = (typeof body === "object" && body !== null ? body : {}) as Partial<ErrorBody>;
  const { code, message, ...extra } = error;
  return new CommandError(
    isErrorCode(code) ? code : "internal",
    typeof message === "string" && message.length > 0 ? message : "the region refused the command",
    extra,
  );
}

export function isTimeout(error: unknown): boolean {
  return error instanceof CommandError && error.extra.timeout === true;
}

export function createClient(options: ClientOptions): BootstreamClient {
  const commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
  const auditLimit = options.audit === true ? AUDIT_LIMIT : options.audit || 0;
  const listeners = new Set<ClientListener>();
  const pending = new Set<(error: CommandError) => void>();

  let state = initialState();
  let status: ClientStatus = "closed";
  let lastError: string | null = null;
  let socket: BootstreamSocket | null = null;
  let closed = false;
  let connecting: {
    promise: Promise<ClientState>;
    resolve: (s: ClientState) => void;
    reject: (e: Error) => void;
  } | null = null;
  let refreshing: Promise<void> | null = null;
  let kicks = 0;
  let kickTimer: ReturnType<typeof setTimeout> | null = null;

  function notify(change: ClientChange): void {
    for (const listener of [...listeners]) {
      try {
        listener(change, state);
      } catch (error) {
        // A broken listener must not stop the others, nor the fold.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  function setStatus(next: ClientStatus, always = false): void {
    if (status === next && !always) return;
    status = next;
    notify("status");
  }

  function settleConnect(error: Error | null): void {
    if (!connecting) return;
    const { resolve, reject } = connecting;
    connecting = null;
    if (error) reject(error);
    else resolve(state);
  }

  function onEvent<E extends EventName>(event: E, payload: Sequenced<EventPayloads[E]>): void {
    if (closed) return;
    const result = foldEvent(state, event, payload);
    if (!result.changed) return;
    state = result.state;
    if (event === "snapshot") {
      kicks = 0;
      lastError = null;
      setStatus("connected");
      settleConnect(null);
      afterSnapshot();
    }
    notify(event);
    if (result.gap) void refresh().catch(() => undefined);
    if (event === "source" && options.catalogue) loadCatalogue();
  }

  function afterSnapshot(): void {
    if (options.catalogue) loadCatalogue();
    if (auditLimit > 0) {
      command("audit:list", { limit: Math.min(auditLimit, AUDIT_PAGE_MAX) }).then(
        ({ entries }) => {
          state = withAuditEntries(state, entries, auditLimit);
          notify("audit:list");
        },
        () => undefined,
      );
    }
  }

  function loadCatalogue(): void {
    command("catalogue:get", {}).then(
      ({ catalogue }) => {
        if (!catalogue) return;
        state = withCatalogue(state, catalogue);
        notify("catalogue");
      },
      () => undefined, // not implemented yet, or timed out: the dashboard shows what it has
    );
  }

  function open(): BootstreamSocket {
    const s: BootstreamSocket = io(options.url, {
      forceNew: true,
      ...options.io,
      autoConnect: false,
      auth: { token: options.token },
    });
    for (const event of SERVER_EVENTS) {
      // One generic handler for every event name; the fold narrows by name.
      (s.on as (ev: string, fn: (payload: never) => void) => void)(event, (payload) =>
        onEvent(event, payload),
      );
    }
    s.on("connect_error", (err) => {
      if (closed) return;
      lastError = err.message || "connection failed";
      // `active` is false when the server's middleware refused us: socket.io will not retry then.
      if (!s.active || lastError === "unauthorized") {
        s.disconnect();
        setStatus("refused");
      } else {
        // Still retrying; tell listeners about the new error even when the status stays the same.
        setStatus(state.ready ? "reconnecting" : "connecting", true);
      }
      settleConnect(new Error(lastError));
    });
    s.on("connect", () => {
      // Connection state recovery: the region replays what we missed instead of a new snapshot.
      if (closed || !s.recovered || !state.ready) return;
      kicks = 0;
      lastError = null;
      setStatus("connected");
    });
    s.on("disconnect", (reason) => {
      if (closed || reason === "io client disconnect") return;
      failPending(new CommandError("internal", `disconnected from the region (${reason})`));
      if (status !== "refused") setStatus("reconnecting");
      if (reason === "io server disconnect") {
        // The server closed us (a revoked token, a restart): socket.io does not retry on its own.
        // Try again; a revoked token then shows as `refused`.
        const delay = Math.min(30_000, 1000 * 2 ** kicks++);
        kickTimer = setTimeout(() => {
          kickTimer = null;
          if (!closed) s.connect();
        }, delay);
      }
    });
    return s;
  }

  function failPending(error: CommandError): void {
    for (const fail of [...pending]) fail(error);
  }

  function connect(): Promise<ClientState> {
    if (closed) return Promise.reject(new Error("client is closed"));
    if (status === "connected") return Promise.resolve(state);
    if (connecting) return connecting.promise;
    let resolve!: (s: ClientState) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<ClientState>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    connecting = { promise, resolve, reject };
    socket ??= open();
    setStatus(state.ready ? "reconnecting" : "connecting");
    socket.connect();
    return promise;
  }

  function command<N extends CommandName>(
    name: N,
    payload: CommandPayload<N>,
    commandOptions: CommandOptions = {},
  ): Promise<CommandResults[N]> {
    if (closed) return Promise.reject(new CommandError("internal", "the client is closed"));
    if (!socket || !socket.connected) {
      // socket.io would buffer the emit and send it after a reconnect, long after we gave up on it.
      return Promise.reject(new CommandError("internal", "not connected to the region"));
    }
    const timeoutMs = commandOptions.timeoutMs ?? commandTimeoutMs;
    const s = socket;
    return new Promise<CommandResults[N]>((resolve, reject) => {
      let done = false;
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        pending.delete(fail);
        return true;
      };
      const fail = (error: CommandError): void => {
        if (finish()) reject(error);
      };
      const timer = setTimeout(
        () =>
          fail(
            new CommandError(
              "internal",
              `${name} timed out: no answer from the region within ${timeoutMs} ms`,
              {
                timeout: true,
              },
            ),
          ),
        timeoutMs,
      );
      pending.add(fail);
      const ack = (answer: Ack<CommandResults[N]>): void => {
        if (!finish()) return;
        if (typeof answer !== "object" || answer === null) {
          reject(new CommandError("internal", `${name}: the region sent a malformed answer`));
        } else if (answer.ok) {
          const { ok: _ok, ...rest } = answer;
          const result = rest as unknown as CommandResults[N];
          absorb(name, result);
          resolve(result);
        } else {
          const error = toCommandError(answer.error);
          absorbError(error);
          reject(error);
        }
      };
      (s.emit as unknown as (ev: string, payload: unknown, ack: (answer: never) => void) => void)(
        name,
        payload,
        ack,
      );
    });
  }

  /** Folds what a command's answer tells us before the matching event arrives. */
  function absorb<N extends CommandName>(name: N, result: CommandResults[N]): void {
    if (name === "selection:save") {
      const { selection } = result as CommandResults["selection:save"];
      const next = withSelection(state, selection, state.you?.name ?? null);
      if (next !== state) {
        state = next;
        notify("selection");
      }
    } else if (name === "source:update") {
      const { catalogue } = result as CommandResults["source:update"];
      if (catalogue) {
        state = withCatalogue(state, catalogue);
        notify("catalogue");
      }
    }
  }

  function absorbError(error: CommandError): void {
    const selection = error.extra.selection;
    if (error.code !== "conflict" || !isSelection(selection)) return;
    const next = withSelection(state, selection);
    if (next !== state) {
      state = next;
      notify("selection");
    }
  }

  function refresh(attempt = 0): Promise<void> {
    if (refreshing) return refreshing;
    refreshing = command("state:get", {})
      .then(({ snapshot }) => {
        const seq = (snapshot as { seq?: unknown }).seq;
        state = applySnapshot(state, snapshot, typeof seq === "number" ? seq : null);
        notify("state:get");
      })
      .finally(() => {
        refreshing = null;
      });
    refreshing.catch(() => {
      if (attempt < 3 && !closed) {
        setTimeout(() => {
          if (!closed && socket?.connected) void refresh(attempt + 1).catch(() => undefined);
        }, 2000);
      }
    });
    return refreshing;
  }

  function close(): void {
    if (closed) return;
    closed = true;
    if (kickTimer) clearTimeout(kickTimer);
    failPending(new CommandError("internal", "the client was closed"));
    settleConnect(new Error("client closed"));
    socket?.disconnect();
    socket?.removeAllListeners();
    status = "closed";
    notify("status");
    listeners.clear();
  }

  return {
    get state() {
      return state;
    },
    get status() {
      return status;
    },
    get error() {
      return lastError;
    },
    get socket() {
      return socket;
    },
    connect,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    command,
    refresh: () => refresh(),
    close,
  };
}

function isSelection(value: unknown): value is CommandResults["selection:save"]["selection"] {
  if (typeof value !== "object" || value === null) return false;
  const v = value as { revision?: unknown; items?: unknown };
  return typeof v.revision === "number" && Array.isArray(v.items);
}
