import {
  formatBytes,
  formatLastSynced,
  importEndText,
  racksText,
  statusText,
  updateText,
} from "@bootstream/images/present";
import { degradedText, type RackState, type Snapshot } from "@bootstream/protocol";
import { describeWindow, formatBandwidth } from "@bootstream/images";

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The dashboard's table in text; `now` is what "Last synced … ago" counts from. */
export function renderStatus(s: Snapshot, now: number = Date.now()): string {
  const ended = importEndText(s.import.error);
  const lines = [
    `Boot source: ${s.source.url || "(none)"}${s.source.error ? `  ERROR: ${s.source.error}` : ""}`,
    `Auto-import: ${s.settings.autoImport ? "on" : "off"}   Bandwidth: ${formatBandwidth(s.settings.bandwidthLimit)}   Window: ${describeWindow(s.settings.importWindow ?? null)}   Import: ${s.import.running ? `running (${s.import.trigger})` : "idle"}${ended ? `  ${ended}` : ""}`,
    `Selection (revision ${s.selection.revision}): ${s.selection.items.map((i) => `${i.os}/${i.release} [${i.arches.join(",")}]`).join("  ") || "(empty)"}`,
    "",
  ];
  // The dashboard's banner, in the same words (a region that cannot write says so first).
  const degraded = degradedText(s.health);
  if (degraded) lines.unshift(`${degraded}.`);
  if (s.images.length === 0) lines.push("No images.");
  else {
    lines.push(
      table([
        ["IMAGE", "VERSION", "SIZE", "RACKS", "LAST SYNCED", "STATUS"],
        ...s.images.map((i) => [
          i.id,
          i.version ?? "-",
          formatBytes(i.bytesTotal),
          racksText(i.racks),
          formatLastSynced(i.syncedAt, now),
          [
            statusText(i),
            // The dashboard's and --watch's words: "updating to 20250812 42%".
            updateText(i) ?? "",
            i.warning ? `WARNING: ${i.warning}` : "",
          ]
            .filter(Boolean)
            .join(" · "),
        ]),
      ]),
    );
  }
  if (s.racks.length) {
    lines.push("", renderRacks(s.racks));
  }
  return lines.join("\n");
}

export function renderRacks(racks: RackState[]): string {
  return table([
    ["RACK", "ONLINE", "IMAGES", "LAST SYNC", "ERROR"],
    ...racks.map((r) => [
      r.name,
      r.online ? "yes" : "no",
      `${r.imagesSynced}/${r.imagesTotal}`,
      r.lastSync ?? "never",
      r.error ?? "",
    ]),
  ]);
}
