// Reads a server's retained heap the same way for the region and the bare server: both run with
// `--inspect=127.0.0.1:0`, and the bench asks V8 through the inspector for a full GC and the heap in use.
// RSS alone mixes what a connection keeps with garbage not yet collected and heap V8 has not given back.
import WebSocket from "ws";

/** The inspector's WebSocket URL that node printed on stderr ("Debugger listening on ws://…"). */
export function inspectorUrl(output: string): string | null {
  return /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1] ?? null;
}

/** Forces a full GC in the inspected process and returns V8's used heap in MiB afterwards. */
export async function gcAndHeapMiB(url: string): Promise<number> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  let id = 0;
  const call = (method: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const mine = ++id;
      const timer = setTimeout(() => reject(new Error(`inspector: no answer to ${method}`)), 30_000);
      const onMessage = (data: WebSocket.RawData) => {
        const message = JSON.parse(data.toString()) as { id?: number; result?: Record<string, unknown> };
        if (message.id !== mine) return;
        clearTimeout(timer);
        ws.off("message", onMessage);
        resolve(message.result ?? {});
      };
      ws.on("message", onMessage);
      ws.send(JSON.stringify({ id: mine, method }));
    });
  try {
    await call("HeapProfiler.collectGarbage");
    await call("HeapProfiler.collectGarbage");
    const usage = await call("Runtime.getHeapUsage");
    return Number(usage["usedSize"]) / 2 ** 20;
  } finally {
    ws.close();
  }
}
