import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { ParseArgsConfig } from "node:util";
import { formatBytes } from "../cli/status-table";
import { addVersion, createMirror } from "./create-mirror";
import type { MirrorSummary } from "./create-mirror";
import { MirrorOptionsError } from "./options";
import type { MirrorOptions, PayloadSizes } from "./options";
import { generateSigningKey } from "./signing";
import { parseSize } from "./sizes";

export const MIRROR_USAGE = `usage:
  bootstream mirror create DIR [--sign KEY.asc] [--releases jammy,noble,oracular] [--arches amd64,arm64]
                               [--kernels ga,hwe] [--versions 2] [--centos centos70,8|none]
                               [--payload-size 64KiB] [--kernel-size S] [--initrd-size S]
                               [--squashfs-size S] [--root-size S]
  bootstream mirror add-version DIR [--sign KEY.asc]     publish one newer version of every product
  bootstream mirror keygen DIR                           write signing.key.asc and signing.pub.asc
`;

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

function parse(args: string[], options: NonNullable<ParseArgsConfig["options"]>) {
  try {
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    if (parsed.positionals.length !== 1) throw new UsageError("give exactly one directory");
    return {
      dir: parsed.positionals[0] as string,
      values: parsed.values as Record<string, string | undefined>,
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
    if (error instanceof UsageError || error instanceof MirrorOptionsError) {
      io.stderr.write(`bootstream mirror: ${error.message}\n${MIRROR_USAGE}`);
      return 2;
    }
    io.stderr.write(`bootstream mirror: ${(error as Error).message}\n`);
    return 1;
  }
}
