import { createClient, imageList, type ClientState } from "@bootstream/protocol/client";
import { RemoteError } from "./http-client";
import {
  RateTracker,
  etaSeconds,
  formatBytes,
  formatEta,
  formatRate,
  statusText,
} from "@bootstream/images/present";

const BAR = 24;

function bar(done: number, total: number): string {
  const filled = total > 0 ? Math.round((done / total) * BAR) : 0;
  return `[${"#".repeat(filled)}${"-".repeat(BAR - filled)}]`;
}

function render(state: ClientState, status: string, rates: RateTracker, now: number): string {
  const lines = [
    `Bootstream — ${status} — import ${state.import.running ? `running (${state.import.trigger})` : "idle"} — auto-import ${state.settings.autoImport ? "on" : "off"}`,
    `Source: ${state.source.url}${state.source.error ? `  ERROR: ${state.source.error}` : ""}`,
    "",
  ];
  for (const image of imageList(state)) {
    let progress = "";
    if (image.state === "downloading") {
      const rate = rates.rate(image.id, now);
      const speed = [formatRate(rate), formatEta(etaSeconds(image.bytesDone, image.bytesTotal, rate))];
      progress = ` ${bar(image.bytesDone, image.bytesTotal)} ${speed.filter(Boolean).join(" · ")}`.trimEnd();
    }
    lines.push(
      `${image.id.padEnd(28)} ${formatBytes(image.bytesTotal).padStart(10)}  racks ${image.racks.synced}/${image.racks.total}  ${statusText(image)}${progress}`,
    );
  }
  if (state.images.size === 0) lines.push("No images selected.");
  for (const rack of state.racks) {
    lines.push(
      `rack ${rack.name}: ${rack.online ? "online" : "OFFLINE"}, ${rack.imagesSynced}/${rack.imagesTotal} images, last sync ${rack.lastSync ?? "never"}${rack.error ? `, error: ${rack.error}` : ""}`,
    );
  }
  return lines.join("\n");
}

/**
 * `status --watch`: follows the region live (snapshot + events, folded by the shared client) and
 * redraws on each change, at most 10 times a second. `--json` prints one snapshot-shaped line per
 * change instead, for piping. Runs until interrupted.
 */
export async function watchStatus(url: string, token: string, json: boolean): Promise<void> {
  const client = createClient({ url, token, io: { transports: ["websocket"] } });
  try {
    await client.connect();
  } catch (error) {
    client.close();
    throw new RemoteError({
      code: "unauthorized",
      message: `cannot follow ${url}: ${(error as Error).message}`,
    });
  }
  const tty = process.stdout.isTTY && !json;
  let timer: NodeJS.Timeout | null = null;
  // The dashboard's rate and ETA, from how bytesDone moves between events.
  const rates = new RateTracker();
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
    for (const image of state.images.values()) {
      if (image.state === "downloading") rates.sample(image.id, image.bytesDone, now);
      else rates.forget(image.id);
    }
    const text = render(state, client.status, rates, now);
    process.stdout.write(tty ? `\x1b[H\x1b[2J${text}\n` : `${text}\n\n`);
  };
  draw();
  client.subscribe(() => {
    timer ??= setTimeout(draw, 100);
  });
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  if (timer) clearTimeout(timer);
  client.close();
}
