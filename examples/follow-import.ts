// Select images and follow their import to the end, over Socket.IO with the typed client.
//
//   BOOTSTREAM_URL=http://127.0.0.1:5240 BOOTSTREAM_TOKEN=... \
//     node --import tsx examples/follow-import.ts ubuntu/noble amd64,arm64 [OS/RELEASE ARCHES]...
//
// Adds the images to the selection (like `bootstream select`), saving with the current revision and
// retrying on `conflict`; then follows the import run that picks the save up and prints progress.
// Exit 0 when every image asked for is synced (or rack-synced), 1 when one failed or the run was
// stopped or refused, 2 on a usage error. BOOTSTREAM_TIMEOUT (seconds, default 3600) bounds the wait.

import { CommandError, createClient, type ClientState } from "@bootstream/protocol/client";
import type { ImageState, SelectionItem } from "@bootstream/protocol";

const url = process.env.BOOTSTREAM_URL ?? "http://127.0.0.1:5240";
const token = process.env.BOOTSTREAM_TOKEN;
const timeoutSeconds = Number(process.env.BOOTSTREAM_TIMEOUT ?? 3600);

function usage(message: string): never {
  console.error(`follow-import: ${message}\nusage: follow-import.ts OS/RELEASE ARCH[,ARCH...] ...`);
  process.exit(2);
}

// "ubuntu/noble amd64,arm64 centos/centos70 amd64" → selection items and the image ids to follow.
const args = process.argv.slice(2);
if (!token) usage("set BOOTSTREAM_TOKEN");
if (args.length === 0 || args.length % 2 !== 0) usage("give OS/RELEASE and ARCHES pairs");
const wanted: SelectionItem[] = [];
for (let i = 0; i < args.length; i += 2) {
  const [os, release, extra] = args[i]!.split("/");
  const arches = args[i + 1]!.split(",").filter(Boolean);
  if (!os || !release || extra !== undefined || arches.length === 0) usage(`bad image "${args[i]}"`);
  wanted.push({ os, release, arches });
}
const targets = wanted.flatMap((item) => item.arches.map((arch) => `${item.os}/${item.release}/${arch}`));

function merge(items: SelectionItem[]): SelectionItem[] {
  const out = items.map((item) => ({ ...item, arches: [...item.arches] }));
  for (const add of wanted) {
    const same = out.find((item) => item.os === add.os && item.release === add.release);
    if (same) same.arches = [...new Set([...same.arches, ...add.arches])];
    else out.push({ ...add });
  }
  return out;
}

function describe(image: ImageState | undefined): string {
  if (!image) return "not in the region yet";
  const percent = image.bytesTotal > 0 ? Math.floor((100 * image.bytesDone) / image.bytesTotal) : 0;
  if (image.state === "downloading") return `downloading ${percent}% of ${image.bytesTotal} bytes`;
  if (image.state === "failed") return `failed: ${image.error}`;
  return `${image.state}${image.version ? ` (version ${image.version})` : ""}, racks ${image.racks.synced}/${image.racks.total}`;
}

const client = createClient({ url, token, commandTimeoutMs: 30_000 });
let state: ClientState;
try {
  state = await client.connect();
} catch (error) {
  console.error(`cannot connect to ${url}: ${(error as Error).message}`); // "unauthorized": wrong token
  client.close();
  process.exit(1);
}

const images = [...state.images.values()];
const count = (s: string) => images.filter((image) => image.state === s).length;
console.log(
  `connected to ${url} as ${state.you?.name} (${state.you?.role}); seq ${state.seq}\n` +
    `  selection revision ${state.selection.revision}: ` +
    (state.selection.items.map((i) => `${i.os}/${i.release} [${i.arches.join(",")}]`).join(", ") ||
      "nothing") +
    `\n  images: ${images.length} (${count("synced") + count("rack-synced")} synced, ` +
    `${count("queued") + count("downloading")} importing, ${count("failed")} failed)` +
    `\n  import: ${state.import.running ? `running since ${state.import.startedAt}` : "idle"}; ` +
    `racks online: ${state.racks.filter((rack) => rack.online).length}/${state.racks.length}`,
);

// The run that imports our save is the first `import` event with running: true after our `selection`
// event (Socket.IO keeps a connection's events in order). Its running: false event ends the wait.
let expectedRevision = Number.POSITIVE_INFINITY; // set just before each save attempt
let saved = false;
let ourRun: string | null = null;
let startedBefore: string | null = state.import.startedAt;
const printed = new Map<string, string>();

const finished = new Promise<number>((resolve) => {
  const timer = setTimeout(() => done(1, `gave up after ${timeoutSeconds} s`), timeoutSeconds * 1000);
  const done = (code: number, message: string) => {
    clearTimeout(timer);
    unsubscribe();
    (code === 0 ? console.log : console.error)(message);
    resolve(code);
  };
  const unsubscribe = client.subscribe((change, s) => {
    for (const id of targets) {
      const line = describe(s.images.get(id));
      if (printed.get(id) !== line) console.log(`${id}: ${line}`);
      printed.set(id, line);
    }
    if (change === "status" && client.status === "refused") {
      return done(1, `the region refused the connection: ${client.error}`);
    }
    if (change === "selection" && s.selection.revision === expectedRevision) saved = true;
    // A fresh snapshot after a reconnect (or a state:get after a gap) already holds the save.
    if ((change === "snapshot" || change === "state:get") && s.selection.revision >= expectedRevision)
      saved = true;
    if (!saved) return;
    if (change === "import" && s.import.running) ourRun ??= s.import.startedAt;
    // After a reconnect without recovery (a fresh snapshot), any run started since the save counts.
    const resynced =
      (change === "snapshot" || change === "state:get") && s.import.startedAt !== startedBefore;
    const ended = !s.import.running && (ourRun !== null ? s.import.startedAt === ourRun : resynced);
    if (!ended) return;
    const bad = targets.filter((id) => !["synced", "rack-synced"].includes(s.images.get(id)?.state ?? ""));
    if (s.import.error) console.log(`import finished with: ${s.import.error}`);
    done(bad.length ? 1 : 0, bad.length ? `not synced: ${bad.join(", ")}` : "all synced");
  });
});

// Read, change, save with the revision read; on conflict start again from the current selection.
let selection = state.selection;
for (let attempt = 1; ; attempt++) {
  expectedRevision = selection.revision + 1;
  startedBefore = client.state.import.startedAt;
  try {
    const answer = await client.command("selection:save", {
      revision: selection.revision,
      items: merge(selection.items),
    });
    console.log(`selection saved as revision ${answer.selection.revision}`);
    break;
  } catch (error) {
    saved = false;
    ourRun = null;
    const current = error instanceof CommandError ? error.extra.selection : undefined;
    if (error instanceof CommandError && error.code === "conflict" && current && attempt < 10) {
      console.log(`conflict: revision ${selection.revision} is stale, retrying`);
      selection = current as typeof selection;
      continue;
    }
    console.error(`selection:save refused: ${(error as Error).message}`);
    client.close();
    process.exit(1);
  }
}

const code = await finished;
client.close();
process.exit(code);
