// The region side of the import benches: a fresh region brought to the point where one `import:start`
// downloads the whole selection, and the timing of that import. Used by import.ts and racks.ts.
import { readFile } from "node:fs/promises";
import { createClient, type BootstreamClient, type ClientState } from "@bootstream/protocol/client";
import { BIN, startRegion, type RegionProcess } from "../test/helpers/region";
import { command, killOnExit, resetPeakRss, statusMiB, threadCpuSeconds, waitForQuiet, withCpu } from "./lib";

export type Region = RegionProcess;

/** A real region (test/helpers/region), optionally from another entry script with node flags. */
export async function startBenchRegion(
  env: Record<string, string>,
  nodeFlags: string[] = [],
  script: string = BIN,
  asShipped = true,
): Promise<Region> {
  // As shipped: the `bootstream` command (its launcher), unless node must be given flags that
  // NODE_OPTIONS refuses (--cpu-prof), or the bench compares with node run on the script itself.
  const launcher = asShipped && script === BIN && !nodeFlags.some((flag) => flag.startsWith("--cpu-prof"));
  const region = await startRegion({ env, script, nodeArgs: nodeFlags, launcher });
  killOnExit(region.child);
  return region;
}

/** What import.ts selects: the 4 images of makeBenchMirror. */
export const SELECTION = [
  { os: "ubuntu", release: "jammy", arches: ["amd64", "arm64"] },
  { os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] },
];
const IMPORT_TIMEOUT_MS = 180_000;

export type RegionImport = {
  seconds: number;
  /** VmHWM of the region from the import command to the end of the import. */
  peakRssMiB: number;
  /** VmHWM of the region over its whole life (start-up included). */
  lifePeakRssMiB: number;
  cpuSeconds: number;
  /** VmRSS of the idle region just before the import. */
  idleRssMiB: number;
  /** CPU seconds of the other processes watched (e.g. the mirror server), by name. */
  otherCpu: Record<string, number>;
  /** Share of the machine's CPU (all cores) busy during the import, 0..1. */
  machineBusy: number;
  /** CPU seconds other sessions' processes used during the import (disturbance). */
  foreign: number;
  /** The region's CPU on its main thread (JS, hashing, socket reads) and on its other threads (fs, GC). */
  mainThreadCpu: number;
  otherThreadsCpu: number;
};

/** Resolves with the state once `predicate` holds; rejects after `timeoutMs`. */
export function waitFor(
  client: BootstreamClient,
  predicate: (state: ClientState) => boolean,
  timeoutMs: number,
  what: string,
): Promise<ClientState> {
  if (predicate(client.state)) return Promise.resolve(client.state);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      const images = [...client.state.images.values()].map((i) => `${i.id}=${i.state}`).join(", ");
      reject(
        new Error(
          `timed out waiting for ${what}; images: ${images}; import: ${JSON.stringify(client.state.import)}`,
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

/**
 * Brings a fresh region to the point where one `import:start` downloads the whole selection: the
 * selection is saved while the source is still unreachable (so nothing downloads), then the source is
 * pointed at the mirror (a region whose selection is set does not import on a source change).
 */
export async function prepareRegion(
  mirrorUrl: string,
  env: Record<string, string>,
  nodeFlags: string[] = [],
  script?: string,
  asShipped = true,
): Promise<{ region: Region; client: BootstreamClient }> {
  const region = await startBenchRegion(env, nodeFlags, script, asShipped);
  const client = createClient({
    url: region.url,
    token: region.adminToken,
    io: { transports: ["websocket"], forceNew: true },
  });
  await client.connect();
  // The fresh region's own first import fails at once: its source is unreachable.
  await waitFor(client, (s) => !s.import.running && s.import.finishedAt !== null, 30_000, "first import");
  // Auto-import off: a source change then does not start an import (import:start still does).
  await command(region.url, region.adminToken, "settings:update", { autoImport: false });
  const before = client.state.import.startedAt;
  await command(region.url, region.adminToken, "selection:save", {
    revision: client.state.selection.revision,
    items: SELECTION,
  });
  await waitFor(
    client,
    (s) => s.import.startedAt !== before && !s.import.running,
    30_000,
    "the selection's import to fail",
  );
  await command(region.url, region.adminToken, "source:update", { url: mirrorUrl });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const images = [...client.state.images.values()];
  // Each image is queued, or failed by the import from the unreachable source: none has a byte yet.
  if (client.state.import.running || images.some((image) => !["queued", "failed"].includes(image.state)))
    throw new Error(
      `the region was to wait for import:start with nothing downloaded, but: import ${JSON.stringify(client.state.import)}, ` +
        images.map((i) => `${i.id}=${i.state}`).join(", "),
    );
  return { region, client };
}

/** `import:start` until every image is synced and the import has ended. */
export async function timeImport(
  region: Region,
  client: BootstreamClient,
  images: string[],
  otherPids: Record<string, number> = {},
  { quiet = true }: { quiet?: boolean } = {},
): Promise<RegionImport> {
  const pid = region.child.pid!;
  const lifePeakBefore = await statusMiB(pid, "VmHWM");
  const idleRssMiB = await statusMiB(pid, "VmRSS");
  if (quiet) await waitForQuiet();
  await resetPeakRss(pid);
  const before = client.state.import.startedAt;
  const threads0 = await threadCpuSeconds(pid);
  const measured = await withCpu({ region: pid, ...otherPids }, async () => {
    await command(region.url, region.adminToken, "import:start");
    return waitFor(
      client,
      (s) =>
        s.import.startedAt !== before &&
        !s.import.running &&
        images.every((id) => ["synced", "failed"].includes(s.images.get(id)?.state ?? "")),
      IMPORT_TIMEOUT_MS,
      "the import",
    );
  });
  const threads1 = await threadCpuSeconds(pid);
  const peakRssMiB = await statusMiB(pid, "VmHWM");
  const state = measured.value;
  const failed = images.filter((id) => state.images.get(id)?.state !== "synced");
  if (failed.length || state.import.error)
    throw new Error(`import failed: ${failed.join(", ")} ${state.import.error ?? ""}`);
  return {
    seconds: measured.seconds,
    peakRssMiB,
    idleRssMiB,
    lifePeakRssMiB: Math.max(lifePeakBefore, peakRssMiB),
    cpuSeconds: measured.cpu["region"]!,
    otherCpu: measured.cpu,
    machineBusy: measured.machineBusy,
    foreign: measured.foreign,
    mainThreadCpu: threads1.main - threads0.main,
    otherThreadsCpu: threads1.others - threads0.others,
  };
}

/**
 * The main thread's CPU profile over the last `windowSeconds` of a .cpuprofile (the import ends just
 * before the region is stopped): self time by function, and by where the code lives.
 */
export async function summariseProfile(file: string, windowSeconds: number, top = 15): Promise<string[]> {
  type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number } };
  const profile = JSON.parse(await readFile(file, "utf8")) as {
    nodes: Node[];
    samples: number[];
    timeDeltas: number[];
    endTime: number;
  };
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  // Sample times, from the deltas; keep those in the window.
  const times: number[] = [];
  let t = 0;
  for (const delta of profile.timeDeltas) times.push((t += delta));
  const last = times.at(-1) ?? 0;
  const from = last - windowSeconds * 1e6;
  const byFrame = new Map<string, number>();
  const byPlace = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    if ((times[i] ?? 0) < from) return;
    const node = nodes.get(id);
    if (!node) return;
    total++;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") idle++;
    const where = url
      ? `${url.replace(/^.*node_modules\//, "~/").replace(/^file:\/\/.*?\/main\//, "")}:${lineNumber + 1}`
      : "";
    const key = `${functionName || "(anonymous)"}  ${where}`;
    byFrame.set(key, (byFrame.get(key) ?? 0) + 1);
    const place = url
      ? (/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
        /^node:internal\/([a-z_]+(?:\/[a-z_]+)?)/.exec(url)?.[1] ??
        url.replace(/^file:\/\/.*?\/main\//, "").replace(/\/[^/]+$/, ""))
      : functionName.startsWith("(")
        ? functionName
        : `native ${functionName}`;
    byPlace.set(place, (byPlace.get(place) ?? 0) + 1);
  });
  const share = (n: number) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
  const lines = [
    `${total} samples over the last ${windowSeconds.toFixed(1)} s; main thread busy ${share(total - idle).trim()}`,
    "by function (self):",
  ];
  for (const [key, n] of [...byFrame].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${share(n)}  ${key}`);
  lines.push("by place (self):");
  for (const [key, n] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${share(n)}  ${key}`);
  return lines;
}
