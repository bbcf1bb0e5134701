import {
  createClient,
  imageList,
  type BootstreamClient,
  type ClientState,
} from "@bootstream/protocol/client";
import { HttpClient, RemoteError, UnreachableError } from "./http-client";
import {
  RateTracker,
  describeWindow,
  etaSeconds,
  formatBandwidth,
  formatBytes,
  formatEta,
  formatRate,
  importEndText,
  isUpdating,
  racksText,
  statusLine,
} from "@bootstream/images/present";

const BAR = 24;

function bar(done: number, total: number): string {
  const filled = total > 0 ? Math.round((done / total) * BAR) : 0;
  return `[${"#".repeat(filled)}${"-".repeat(BAR - filled)}]`;
}

/** The watch's lines, keyed: the header, the source, one per image, one per rack (in display order). */
export function renderLines(
  state: ClientState,
  status: string,
  rates: RateTracker | null,
  now: number,
): Map<string, string> {
  const lines = new Map<string, string>([
    [
      "header",
      `Bootstream — ${status} — import ${state.import.running ? `running (${state.import.trigger})` : "idle"} — auto-import ${state.settings.autoImport ? "on" : "off"}`,
    ],
    ["source", `Source: ${state.source.url}${state.source.error ? `  ERROR: ${state.source.error}` : ""}`],
  ]);
  // What `status` shows beside the source: the cap, the window, and how the last import ended.
  const ended = importEndText(state.import.error);
  lines.set(
    "settings",
    `Bandwidth: ${formatBandwidth(state.settings.bandwidthLimit)}   Window: ${describeWindow(state.settings.importWindow ?? null)}${ended ? `   ${ended}` : ""}`,
  );
  for (const image of imageList(state)) {
    let progress = "";
    // The bar and rate move on every event: only a terminal, redrawn in place, shows them.
    const bytes = image.state === "downloading" ? image : isUpdating(image) ? image.next : null;
    if (rates && bytes) {
      const rate = rates.rate(image.id, now);
      const speed = [formatRate(rate), formatEta(etaSeconds(bytes.bytesDone, bytes.bytesTotal, rate))];
      progress = ` ${bar(bytes.bytesDone, bytes.bytesTotal)} ${speed.filter(Boolean).join(" · ")}`.trimEnd();
    }
    const warning = image.warning ? `  WARNING: ${image.warning}` : "";
    lines.set(
      `image:${image.id}`,
      `${image.id.padEnd(28)} ${(image.version ?? "-").padEnd(10)} ${formatBytes(image.bytesTotal).padStart(10)}  racks ${racksText(image.racks)}  ${statusLine(image)}${progress}${warning}`,
    );
  }
  if (state.images.size === 0) lines.set("no-images", "No images selected.");
  for (const rack of state.racks) {
    lines.set(
      `rack:${rack.name}`,
      `rack ${rack.name}: ${rack.online ? "online" : "OFFLINE"}, ${rack.imagesSynced}/${rack.imagesTotal} images, last sync ${rack.lastSync ?? "never"}${rack.error ? `, error: ${rack.error}` : ""}`,
    );
  }
  return lines;
}

/**
 * What a pipe gets on a change: the lines that are new or differ from the last ones printed, and a
 * line for each thing that went away ("removed ubuntu/jammy/amd64").
 */
export function changedLines(
  before: ReadonlyMap<string, string>,
  after: ReadonlyMap<string, string>,
): string[] {
  const out: string[] = [];
  for (const [key, line] of after) if (before.get(key) !== line) out.push(line);
  for (const key of before.keys()) {
    if (after.has(key)) continue;
    if (key.startsWith("image:")) out.push(`removed ${key.slice("image:".length)}`);
    else if (key.startsWith("rack:")) out.push(`removed rack ${key.slice("rack:".length)}`);
  }
  return out;
}

/**
 * `status --watch`: follows the region live (snapshot + events, folded by the shared client) and
 * redraws on each change, at most 10 times a second, on a terminal; to a pipe it prints the current
 * lines once, then only the lines that changed. `--json` prints one snapshot-shaped line per change
 * instead. Runs until interrupted.
 */
export async function watchStatus(url: string, token: string, json: boolean): Promise<void> {
  const client = await connectLive(url, token, "cannot follow");
  const tty = process.stdout.isTTY && !json;
  let timer: NodeJS.Timeout | null = null;
  // The dashboard's rate and ETA, from how bytesDone moves between events.
  const rates = new RateTracker();
  let printed: ReadonlyMap<string, string> = new Map();
  const draw = () => {
    timer = null;
    const state = client.state;
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ seq: state.seq, import: state.import, images: imageList(state), racks: state.racks })}\n`,
      );
      return;
    }
    const now = Date.now();
    if (!tty) {
      // A pipe or a log file: a line per change, never the whole table again.
      const lines = renderLines(state, client.status, null, now);
      const changed = changedLines(printed, lines);
      printed = lines;
      if (changed.length) process.stdout.write(`${changed.join("\n")}\n`);
      return;
    }
    for (const image of state.images.values()) {
      const bytes = image.state === "downloading" ? image : isUpdating(image) ? image.next : null;
      if (bytes) rates.sample(image.id, bytes.bytesDone, now);
      else rates.forget(image.id);
    }
    const text = [...renderLines(state, client.status, rates, now).values()].join("\n");
    process.stdout.write(`\x1b[H\x1b[2J${text}\n`);
  };
  draw();
  client.subscribe(() => {
    timer ??= setTimeout(draw, 100);
  });
  try {
    await Promise.race([
      new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      }),
      refusedLater(client),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
    client.close();
  }
}

/**
 * Rejects once the region refuses a client that was connected (its token revoked while it watched):
 * the socket will not retry, so a command following events would otherwise wait forever (and node,
 * with nothing left to run, exit 13 without a word).
 */
export function refusedLater(client: BootstreamClient): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    const check = () => {
      if (client.status !== "refused") return;
      unsubscribe();
      reject(
        new RemoteError({
          code: "unauthorized",
          message: `the region refused this token (revoked?): ${client.error ?? "refused"}`,
        }),
      );
    };
    const unsubscribe = client.subscribe(check);
    check();
  });
}

/**
 * A live socket client for a CLI command that follows events (`status --watch`, `verify`): a
 * region that refused the socket is a RemoteError saying what the command could not do; one that
 * cannot be reached (the client would go on retrying) is an UnreachableError.
 */
export async function connectLive(url: string, token: string, doing: string): Promise<BootstreamClient> {
  const client = createClient({ url, token, io: { transports: ["websocket"] } });
  try {
    await client.connect();
  } catch (error) {
    const refused = client.status === "refused";
    const reason = (error as Error).message;
    client.close();
    // The socket's refusal is a bare word ("websocket error", "unauthorized"): one request says why
    // in the one-shot commands' words (connection refused, token not accepted, rate-limited), and throws.
    await new HttpClient(url, token).state();
    // HTTP answers, the socket does not: something between passes requests but not WebSockets.
    if (!refused)
      throw UnreachableError.because(
        url,
        `${reason}: HTTP answers but the WebSocket does not (a proxy that does not pass upgrades?)`,
      );
    throw new RemoteError({ code: "unauthorized", message: `${doing} ${url}: ${reason}` });
  }
  return client;
}
