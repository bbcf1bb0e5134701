// The client side of bench/sockets.ts, in its own process: opens N socket.io-client connections, then
// sends the state changes itself and times each one from the moment it sends the command until the
// `settings` event reaches each client (one clock: this process's performance.now()).
// Forked with an IPC channel and driven by messages:
//   parent → { type: "connect", ... }  ← { type: "connected", clients, ms }
//   parent → { type: "events", ... }   ← { type: "events", latencies, missing, commandMs }
//   parent → { type: "close" }         (disconnects everything and exits)
import { io, type Socket } from "socket.io-client";

export type ConnectMessage = { type: "connect"; url: string; token: string; count: number; batch: number };
export type EventsMessage = {
  type: "events";
  /** POST this URL (the body `{ autoImport }` for the region; the query string for the bare server). */
  trigger: { url: string; headers: Record<string, string>; body: boolean; query: boolean };
  warmup: number;
  events: number;
  intervalMs: number;
  /** The value of autoImport before the first event (each event toggles it). */
  initial: boolean;
};
export type ParentMessage = ConnectMessage | EventsMessage | { type: "close" };

const CONNECT_TIMEOUT_MS = 30_000;
const EVENT_TIMEOUT_MS = 10_000;

const sockets: Socket[] = [];
/** Called with (value, arrival time) for every `settings` event any client receives. */
let onSettings: (autoImport: boolean, at: number) => void = () => undefined;

function connectOne(url: string, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      auth: { token },
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: CONNECT_TIMEOUT_MS,
    });
    sockets.push(socket);
    const timer = setTimeout(() => reject(new Error("no snapshot within 30 s")), CONNECT_TIMEOUT_MS);
    // Ready when the first snapshot has arrived: what a dashboard waits for.
    socket.once("snapshot", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("connect_error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("settings", (payload: { settings: { autoImport: boolean } }) =>
      onSettings(payload.settings.autoImport, performance.now()),
    );
  });
}

async function connectAll(message: ConnectMessage): Promise<void> {
  const started = performance.now();
  for (let i = 0; i < message.count; i += message.batch) {
    const batch = Math.min(message.batch, message.count - i);
    await Promise.all(Array.from({ length: batch }, () => connectOne(message.url, message.token)));
  }
  process.send!({ type: "connected", clients: sockets.length, ms: performance.now() - started });
}

/**
 * Each event: send the command, then wait until every client has its `settings` (or the timeout), and
 * at least intervalMs between sends. Waiting for all arrivals keeps one event in flight, so each
 * arrival belongs to exactly one send.
 */
async function runEvents(message: EventsMessage): Promise<void> {
  const latencies: number[] = [];
  const commandMs: number[] = [];
  let missing = 0;
  let value = message.initial;
  const total = message.warmup + message.events;
  for (let i = 0; i < total; i++) {
    value = !value;
    const expected = value;
    const measured = i >= message.warmup;
    let arrived = 0;
    let allArrived: () => void = () => undefined;
    const everyone = new Promise<void>((resolve) => (allArrived = resolve));
    const sentAt = performance.now();
    onSettings = (autoImport, at) => {
      if (autoImport !== expected) return;
      if (measured) latencies.push(at - sentAt);
      if (++arrived === sockets.length) allArrived();
    };
    const paced = new Promise((resolve) => setTimeout(resolve, message.intervalMs));
    const { trigger } = message;
    const url = trigger.query ? `${trigger.url}?autoImport=${value}` : trigger.url;
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...trigger.headers },
      body: trigger.body ? JSON.stringify({ autoImport: value }) : "",
    });
    if (!response.ok) throw new Error(`trigger answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
    if (measured) commandMs.push(performance.now() - sentAt);
    if (sockets.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        everyone,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, EVENT_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      if (measured) missing += sockets.length - arrived;
    }
    onSettings = () => undefined;
    await paced;
  }
  process.send!({ type: "events", latencies, missing, commandMs });
}

process.on("message", (message: ParentMessage) => {
  const fail = (error: unknown) => {
    process.send!({ type: "error", message: error instanceof Error ? error.message : String(error) });
  };
  if (message.type === "connect") connectAll(message).catch(fail);
  else if (message.type === "events") runEvents(message).catch(fail);
  else if (message.type === "close") {
    for (const socket of sockets) socket.disconnect();
    setTimeout(() => process.exit(0), 200);
  }
});
process.on("disconnect", () => process.exit(0));
