import { createClient, type BootstreamClient, type ClientState } from "@bootstream/protocol/client";

/** A real typed client (the CLI's and the dashboard's) connected over WebSocket. */
export async function watch(url: string, token: string): Promise<BootstreamClient> {
  const client = createClient({ url, token, io: { transports: ["websocket"], forceNew: true } });
  await client.connect();
  return client;
}

/** Resolves with the state once `predicate` holds; rejects after `timeoutMs` with what was seen. */
export function waitFor(
  client: BootstreamClient,
  predicate: (state: ClientState) => boolean,
  timeoutMs = 30_000,
  what = "condition",
): Promise<ClientState> {
  if (predicate(client.state)) return Promise.resolve(client.state);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      const images = [...client.state.images.values()].map(
        (i) =>
          `${i.id}=${i.state}${i.next ? `, next ${i.next.version} ${i.next.state}` : ""}${i.error ? `(${i.error})` : ""}`,
      );
      reject(
        new Error(
          `timed out waiting for ${what}; images: ${images.join(", ") || "none"}; import: ${JSON.stringify(client.state.import)}`,
        ),
      );
    }, timeoutMs);
    const unsubscribe = client.subscribe((_change, state) => {
      if (!predicate(state)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(state);
    });
  });
}

/** Records every state an image passes through, in order, without repeats. */
export function recordStates(client: BootstreamClient, id: string): string[] {
  const seen: string[] = [];
  client.subscribe((_change, state) => {
    const image = state.images.get(id);
    if (image && seen.at(-1) !== image.state) seen.push(image.state);
  });
  return seen;
}
