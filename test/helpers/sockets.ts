import { io, type Socket } from "socket.io-client";
import type {
  Ack,
  ClientToServerEvents,
  CommandName,
  CommandPayload,
  CommandResults,
  ServerToClientEvents,
  Snapshot,
} from "@bootstream/protocol";

export type TestSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Connects and resolves with the socket and its first snapshot; rejects with the connect_error message. */
export function connect(
  url: string,
  token: string | undefined,
): Promise<{ socket: TestSocket; snapshot: Snapshot & { seq: number } }> {
  const socket: TestSocket = io(url, {
    auth: token === undefined ? {} : { token },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
  });
  return new Promise((resolve, reject) => {
    socket.once("snapshot", (snapshot) => resolve({ socket, snapshot }));
    socket.once("connect_error", (error) => {
      socket.close();
      reject(error);
    });
  });
}

/** Sends a command and resolves with its raw ack. */
export function send<N extends CommandName>(
  socket: TestSocket,
  name: N,
  payload: CommandPayload<N>,
): Promise<Ack<CommandResults[N]>> {
  return new Promise((resolve) => {
    (socket.emit as (event: string, ...args: unknown[]) => void)(name, payload, resolve);
  });
}

/** Sends anything at all, for tests of malformed input. */
export function sendRaw(socket: TestSocket, name: string, ...args: unknown[]): Promise<unknown> {
  return new Promise((resolve) => {
    (socket.emit as (event: string, ...args: unknown[]) => void)(name, ...args, resolve);
  });
}

export async function post(
  url: string,
  token: string | null,
  name: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${url}/api/v1/commands/${name}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}
