import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import { formatBytes } from "@bootstream/images/present";
import { addVersion, createMirror } from "./create-mirror";
import type { MirrorSummary } from "./create-mirror";
import { MirrorOptionsError } from "./options";
import type { MirrorOptions, PayloadSizes } from "./options";
import { BUNDLED_KEYRING_PATH, DEFAULT_SOURCE_URL } from "../config";
import { generateSigningKey, readSigningKey } from "./signing";
import { syncMirror } from "./sync";
import type { SyncEvent } from "./sync";
import { FilterError, parseFilter } from "./sync-plan";
import { parseSize } from "./sizes";

/** Each subcommand's usage: `bootstream mirror SUB --help` prints its own, `mirror --help` all. */
export const MIRROR_SUBCOMMAND_USAGE = {
  sync: `  bootstream mirror sync SOURCE_URL DIR [FILTER...] [--max N] [--keyring FILE|none] [--sign KEY.asc]
                               [--dry-run] [--progress|--json]
      copy a real simplestreams source (e.g. ${DEFAULT_SOURCE_URL}) for an air-gapped site;
      FILTER: key=value, key!=value, key~regex, key!~regex on product fields (all must match;
      bootloaders are kept unless a filter on a field they have excludes them), e.g.
      'arch=amd64' 'release~(jammy|noble)'. --max N keeps the newest N versions of each product.
      The source is verified with --keyring (default: the bundled Ubuntu cloud image key);
      --keyring none reads an unsigned source. --sign clearsigns the copy; without it the copy is
      unsigned: point a region at it with --boot-source-keyring none (BOOT_SOURCE_KEYRING=none).
      --progress: files, bytes, rate and ETA on stderr; --json: JSON lines on stdout.
`,
  create: `  bootstream mirror create DIR [--sign KEY.asc] [--releases jammy,noble,oracular] [--arches amd64,arm64]
                               [--kernels ga,hwe] [--versions 2] [--centos centos70,8|none]
                               [--payload-size 64KiB] [--kernel-size S] [--initrd-size S]
                               [--squashfs-size S] [--root-size S]
      write a SYNTHETIC mirror (made-up payloads, for tests and demos; use sync for real images)
`,
  "add-version": `  bootstream mirror add-version DIR [--sign KEY.asc]     publish one newer synthetic version of every product
`,
  keygen: `  bootstream mirror keygen DIR                           write signing.key.asc and signing.pub.asc
`,
} as const;

type Subcommand = keyof typeof MIRROR_SUBCOMMAND_USAGE;

export const MIRROR_USAGE = `usage:\n${Object.values(MIRROR_SUBCOMMAND_USAGE).join("")}`;

/** The usage of one subcommand, or of all for an unknown one. */
function usageOf(subcommand: string | undefined): string {
  return subcommand !== undefined && Object.hasOwn(MIRROR_SUBCOMMAND_USAGE, subcommand)
    ? `usage:\n${MIRROR_SUBCOMMAND_USAGE[subcommand as Subcommand]}`
    : MIRROR_USAGE;
}

type Output = { write(text: string): unknown };
export type CommandIo = { stdout: Output; stderr: Output };

class UsageError extends Error {}

const CREATE_OPTIONS = {
  sign: { type: "string" },
  releases: { type: "string" },
  arches: { type: "string" },
  kernels: { type: "string" },
  versions: { type: "string" },
  centos: { type: "string" },
  "payload-size": { type: "string" },
  "kernel-size": { type: "string" },
  "initrd-size": { type: "string" },
  "squashfs-size": { type: "string" },
  "root-size": { type: "string" },
} as const;

class HelpRequested extends Error {}

function parse(args: string[], options: NonNullable<ParseArgsConfig["options"]>, positionals = 1) {
  if (args.includes("--help") || args.includes("-h")) throw new HelpRequested();
  try {
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    if (positionals === 1 && parsed.positionals.length !== 1)
      throw new UsageError("give exactly one directory");
    if (parsed.positionals.length < positionals) throw new UsageError("give SOURCE_URL and DIR");
    return {
      positionals: parsed.positionals,
      dir: parsed.positionals[0] as string,
      values: parsed.values as Record<string, string | undefined> &
        Record<string, string | boolean | undefined>,
    };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (value === "none") return [];
  return value
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "");
}

function size(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const bytes = parseSize(value);
  if (bytes === null) throw new UsageError(`--${name}: "${value}" is not a size (e.g. 65536, 64KiB, 256MiB)`);
  return bytes;
}

async function readKeyFile(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`--sign: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

async function createOptions(values: Record<string, string | undefined>): Promise<MirrorOptions> {
  const versions = values.versions;
  if (versions !== undefined && !/^\d+$/.test(versions))
    throw new UsageError(`--versions: "${versions}" is not a number`);
  const sizes: Partial<PayloadSizes> = {};
  for (const kind of ["kernel", "initrd", "squashfs", "root"] as const) {
    const bytes = size(`${kind}-size`, values[`${kind}-size`]);
    if (bytes !== undefined) sizes[kind] = bytes;
  }
  const options: MirrorOptions = { sizes };
  const releases = list(values.releases);
  const arches = list(values.arches);
  const kernels = list(values.kernels);
  const centos = list(values.centos);
  const payloadSize = size("payload-size", values["payload-size"]);
  const signingKey = await readKeyFile(values.sign);
  if (releases !== undefined) options.releases = releases;
  if (arches !== undefined) options.arches = arches;
  if (kernels !== undefined) options.kernels = kernels;
  if (centos !== undefined) options.centos = centos;
  if (versions !== undefined) options.versions = Number(versions);
  if (payloadSize !== undefined) options.payloadSize = payloadSize;
  if (signingKey !== undefined) options.signingKey = signingKey;
  return options;
}

function describe(summary: MirrorSummary): string {
  return [
    `mirror ${summary.signed ? "(signed) " : ""}written to ${summary.dir}`,
    `  images:   ${summary.images.join(" ")}`,
    `  versions: ${summary.versions.join(" ")}`,
    `  ${summary.products} products, ${summary.files} payload files, ${formatBytes(summary.bytes)} (${summary.written} written now)`,
    `  boot source URL: ${summary.url} (or serve the directory over HTTP)`,
    "",
  ].join("\n");
}

async function keygen(dir: string, io: CommandIo): Promise<number> {
  const privatePath = join(dir, "signing.key.asc");
  const publicPath = join(dir, "signing.pub.asc");
  for (const path of [privatePath, publicPath]) {
    const exists = await access(path).then(
      () => true,
      () => false,
    );
    if (exists) {
      io.stderr.write(`bootstream mirror keygen: ${path} exists; not overwriting a key\n`);
      return 1;
    }
  }
  const { privateKey, publicKey } = await generateSigningKey();
  await mkdir(dir, { recursive: true });
  await writeFile(privatePath, privateKey, { mode: 0o600 });
  await writeFile(publicPath, publicKey);
  io.stdout.write(`wrote ${privatePath} (give it to --sign) and ${publicPath} (the boot source keyring)\n`);
  return 0;
}

const SYNC_OPTIONS = {
  max: { type: "string" },
  keyring: { type: "string" },
  sign: { type: "string" },
  "dry-run": { type: "boolean" },
  progress: { type: "boolean" },
  json: { type: "boolean" },
} as const;

function rate(bytes: number, seconds: number): string {
  return seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : "-";
}

async function sync(
  parsed: { positionals: string[]; values: Record<string, string | boolean | undefined> },
  io: CommandIo,
): Promise<number> {
  const [source, dir, ...filterTexts] = parsed.positionals as [string, string, ...string[]];
  const values = parsed.values;
  const filters = filterTexts.map(parseFilter);
  const maxText = values.max as string | undefined;
  if (maxText !== undefined && !/^[1-9]\d{0,5}$/.test(maxText)) {
    throw new UsageError(`--max: "${maxText}" is not a whole number from 1`);
  }
  if (values.progress === true && values.json === true)
    throw new UsageError("give --progress or --json, not both");
  const keyringOption = (values.keyring as string | undefined) ?? BUNDLED_KEYRING_PATH;
  let keyring: string | null = null;
  if (keyringOption !== "none") {
    try {
      keyring = await readFile(keyringOption, "utf8");
    } catch (error) {
      throw new UsageError(
        `--keyring: cannot read ${keyringOption} (${(error as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
  }
  const armored = await readKeyFile(values.sign as string | undefined);
  const signingKey = armored === undefined ? undefined : await readSigningKey(armored);
  const json = values.json === true;
  const started = Date.now();
  let lastLine = 0;
  const onEvent = (event: SyncEvent) => {
    if (json) {
      if (event.event !== "progress" || Date.now() - lastLine >= 1000 || event.files === event.totalFiles) {
        lastLine = Date.now();
        io.stdout.write(`${JSON.stringify(event)}\n`);
      }
      return;
    }
    if (values.progress !== true || event.event !== "progress") return;
    if (Date.now() - lastLine < 500 && event.files !== event.totalFiles) return;
    lastLine = Date.now();
    const seconds = (Date.now() - started) / 1000;
    const speed = seconds > 0 ? event.bytes / seconds : 0;
    const eta = speed > 0 ? Math.ceil((event.totalBytes - event.bytes) / speed) : null;
    io.stderr.write(
      `files ${event.files}/${event.totalFiles}  ${formatBytes(event.bytes)} of ${formatBytes(event.totalBytes)}  ` +
        `${rate(event.bytes, seconds)}  ETA ${eta === null ? "-" : `${eta}s`}\n`,
    );
  };
  const summary = await syncMirror({
    source,
    dir,
    filters,
    ...(maxText === undefined ? {} : { max: Number(maxText) }),
    keyring,
    ...(signingKey === undefined ? {} : { signingKey }),
    dryRun: values["dry-run"] === true,
    onEvent,
  });
  const { plan } = summary;
  const seconds = (Date.now() - started) / 1000;
  if (json) {
    io.stdout.write(
      `${JSON.stringify({
        event: "summary",
        dryRun: summary.dryRun,
        products: summary.products,
        add: plan.add.map((f) => ({ path: f.path, size: f.size })),
        remove: plan.remove.map((f) => ({ path: f.path, size: f.size })),
        addBytes: plan.addBytes,
        removeBytes: plan.removeBytes,
        kept: plan.keep.length,
        fetchedBytes: summary.fetchedBytes,
        requests: summary.requests,
        signed: summary.signed,
      })}\n`,
    );
    return 0;
  }
  const lines: string[] = [];
  if (summary.dryRun) {
    for (const file of plan.add) lines.push(`  add     ${file.path} (${formatBytes(file.size)})`);
    for (const file of plan.remove) lines.push(`  remove  ${file.path} (${formatBytes(file.size)})`);
    lines.push(
      `dry run: would add ${plan.add.length} files (${formatBytes(plan.addBytes)}), keep ${plan.keep.length}, ` +
        `remove ${plan.remove.length} (${formatBytes(plan.removeBytes)}); nothing fetched or changed`,
    );
  } else {
    lines.push(
      `mirror ${summary.signed ? "(signed) " : "(unsigned) "}synced to ${dir}: ${summary.products} products; ` +
        `added ${plan.add.length} files (${formatBytes(summary.fetchedBytes)} fetched in ${seconds.toFixed(1)} s, ` +
        `${rate(summary.fetchedBytes, seconds)}), kept ${plan.keep.length}, removed ${plan.remove.length} (${formatBytes(plan.removeBytes)})`,
    );
    lines.push(
      summary.signed
        ? "  serve DIR over HTTP and give the region its URL with the public half of --sign as --boot-source-keyring"
        : "  unsigned: serve DIR over HTTP and start the region with --boot-source-url URL --boot-source-keyring none",
    );
  }
  io.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

/** `bootstream mirror …`: argv is what follows `mirror`. Exit code 0, 1 (failed) or 2 (usage). */
export async function mirrorCommand(
  argv: string[],
  io: CommandIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [subcommand, ...rest] = argv;
  try {
    switch (subcommand) {
      case "create": {
        const { dir, values } = parse(rest, CREATE_OPTIONS);
        io.stdout.write(describe(await createMirror(dir, await createOptions(values))));
        return 0;
      }
      case "add-version": {
        const { dir, values } = parse(rest, { sign: { type: "string" } });
        const signingKey = await readKeyFile(values.sign);
        io.stdout.write(describe(await addVersion(dir, signingKey === undefined ? {} : { signingKey })));
        return 0;
      }
      case "sync":
        return await sync(parse(rest, SYNC_OPTIONS, 2), io);
      case "keygen": {
        const { dir } = parse(rest, {});
        return await keygen(dir, io);
      }
      case "help":
      case "--help":
      case "-h":
        io.stdout.write(MIRROR_USAGE);
        return 0;
      default:
        throw new UsageError(
          subcommand === undefined ? "missing subcommand" : `unknown subcommand "${subcommand}"`,
        );
    }
  } catch (error) {
    if (error instanceof HelpRequested) {
      io.stdout.write(usageOf(subcommand));
      return 0;
    }
    if (error instanceof UsageError || error instanceof MirrorOptionsError || error instanceof FilterError) {
      io.stderr.write(`bootstream mirror: ${error.message}\n${usageOf(subcommand)}`);
      return 2;
    }
    io.stderr.write(`bootstream mirror: ${(error as Error).message}\n`);
    return 1;
  }
}
