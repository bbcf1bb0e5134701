import { readFileSync } from "node:fs";
import { isDeepStrictEqual, parseArgs } from "node:util";
import {
  bandwidthProblem,
  deselectArches,
  normaliseSelectionItems,
  selectArches,
} from "@bootstream/images/present";
import {
  AUDIT_PAGE_MAX,
  CommandError,
  type AuditEntry,
  type Catalogue,
  type SelectionItem,
  type Snapshot,
} from "@bootstream/protocol";
import { HttpClient, RemoteError, UnreachableError } from "./http-client";
import { SETTINGS_USAGE, UsageError } from "./usage";
import { renderRacks, renderStatus, table } from "./status-table";
import {
  describeWindow,
  formatBandwidth,
  parseBandwidth,
  parseWindow,
  type ImportWindow,
} from "@bootstream/images";

type Flags = Record<string, string | boolean | undefined>;
type Parsed = { flags: Flags; positionals: string[]; client: () => HttpClient };

const COMMON = {
  url: { type: "string" },
  token: { type: "string" },
} as const;

/**
 * Parses a client command's flags; more than `maxPositionals` words is a usage error, never ignored
 * (`bootstream import stop` must not start an import). `hint` is said after the refusal.
 */
function parse(
  argv: string[],
  options: Record<string, { type: "string" | "boolean" }>,
  maxPositionals = 0,
  hint = "",
): Parsed {
  let values: Flags;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { ...COMMON, ...options },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    // Node's words for an unknown flag advise `--` (for positionals that start with a dash), which
    // is no help here: name the flag and where the command's flags are listed.
    const unknown = /^Unknown option '([^']+)'/.exec((error as Error).message);
    if (unknown)
      throw new UsageError(`unknown flag ${unknown[1]} (--help lists the flags this command takes)`);
    throw new UsageError((error as Error).message);
  }
  const extra = positionals[maxPositionals];
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"${hint ? `; ${hint}` : ""}`);
  const url = (values.url as string | undefined) ?? process.env.BOOTSTREAM_URL ?? "http://127.0.0.1:5240";
  return {
    flags: values,
    positionals,
    client: () => {
      const token = (values.token as string | undefined) ?? process.env.BOOTSTREAM_TOKEN;
      if (!token) throw new UsageError("no token: pass --token TOKEN or set BOOTSTREAM_TOKEN");
      try {
        new URL(url);
      } catch {
        throw new UsageError(`--url "${url}" is not a URL`);
      }
      return new HttpClient(url, token);
    },
  };
}

const say = (line: string) => {
  process.stdout.write(`${line}\n`);
};

function offeredImages(catalogue: Catalogue): string[] {
  return [
    ...catalogue.ubuntu.releases.map((r) => `ubuntu/${r.release}`),
    ...catalogue.other.map((o) => `${o.os}/${o.release}`),
  ];
}

/** `bootstream rack remove NAME` (main routes it here; `bootstream rack --region …` runs the agent). */
export async function rackRemove(argv: string[]): Promise<void> {
  const { positionals, client } = parse(argv, {}, 1);
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError("usage: bootstream rack remove NAME");
  await client().command("rack:remove", { name });
  say(`rack "${name}" removed`);
}

/** select/deselect: read, change, save with the revision read; on conflict, read again and redo the change. */
async function editSelection(
  client: HttpClient,
  change: (items: SelectionItem[]) => SelectionItem[],
  unchangedWhy: string,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const { selection } = await client.state();
    const items = change(selection.items);
    // Nothing to change (selected already, or not selected: a typo shows here): no save, no import.
    if (isDeepStrictEqual(normaliseSelectionItems(items), normaliseSelectionItems(selection.items))) {
      say(`selection unchanged (revision ${selection.revision}): ${unchangedWhy}`);
      return;
    }
    try {
      const saved = await client.command("selection:save", {
        revision: selection.revision,
        items,
      });
      say(`selection saved (revision ${saved.selection.revision})`);
      return;
    } catch (error) {
      if (!(error instanceof RemoteError) || error.body.code !== "conflict" || attempt >= 10) throw error;
    }
  }
}

function splitImage(spec: string | undefined): { os: string; release: string } {
  const match = /^([a-z0-9][a-z0-9._-]*)\/([a-z0-9][a-z0-9._-]*)$/.exec(spec ?? "");
  if (!match) throw new UsageError(`expected OS/RELEASE such as ubuntu/noble, got "${spec ?? ""}"`);
  return { os: match[1]!, release: match[2]! };
}

function splitArches(value: string | boolean | undefined): string[] | null {
  if (typeof value !== "string") return null;
  const arches = [
    ...new Set(
      value
        .split(",")
        .map((a) => a.trim())
        .filter(Boolean),
    ),
  ];
  if (arches.length === 0) throw new UsageError("--arch needs at least one architecture");
  return arches;
}

export const clientCommands: Record<string, (argv: string[]) => Promise<void>> = {
  async status(argv) {
    const { flags, client } = parse(argv, { json: { type: "boolean" }, watch: { type: "boolean" } });
    if (flags.watch) {
      const { watchStatus } = await import("./watch");
      await watchStatus(
        client().url,
        (flags.token as string | undefined) ?? process.env.BOOTSTREAM_TOKEN ?? "",
        Boolean(flags.json),
      );
      return;
    }
    const snapshot: Snapshot = await client().state();
    say(flags.json ? JSON.stringify(snapshot, null, 2) : renderStatus(snapshot));
  },

  async select(argv) {
    const { flags, positionals, client } = parse(
      argv,
      { arch: { type: "string" } },
      1,
      "one OS/RELEASE a command",
    );
    const { os, release } = splitImage(positionals[0]);
    const arches = splitArches(flags.arch) ?? ["amd64"];
    const http = client();
    const { catalogue } = await http.command("catalogue:get", {});
    const offered = offeredImages(catalogue);
    if (!offered.includes(`${os}/${release}`)) {
      throw new RemoteError({
        code: "invalid",
        message: `${os}/${release} is not offered by the boot source; offered: ${offered.join(", ") || "nothing (see bootstream status)"}`,
      });
    }
    await editSelection(
      http,
      (items) => selectArches(items, os, release, arches),
      `${os}/${release} [${arches.join(",")}] is selected already`,
    );
  },

  async deselect(argv) {
    const { flags, positionals, client } = parse(
      argv,
      { arch: { type: "string" } },
      1,
      "one OS/RELEASE a command",
    );
    const { os, release } = splitImage(positionals[0]);
    const arches = splitArches(flags.arch);
    await editSelection(
      client(),
      (items) => deselectArches(items, os, release, arches),
      `${os}/${release}${arches ? ` [${arches.join(",")}]` : ""} is not selected`,
    );
  },

  async import(argv) {
    const stop = argv[0] === "stop" ? "to stop the import: bootstream stop-import" : "";
    const { client } = parse(argv, {}, 0, stop);
    const result = await client().command("import:start", {});
    say(result.import.running ? `import running (started ${result.import.startedAt})` : "import requested");
  },

  async "stop-import"(argv) {
    const { client } = parse(argv, {});
    const http = client();
    const before = await http.state();
    await http.command("import:stop", {});
    say(
      before.import.running
        ? "import stopped: what it had not finished stays queued for the next import (bootstream import, or the schedule's)"
        : "no import was running",
    );
  },

  async audit(argv) {
    const { flags, client } = parse(argv, { limit: { type: "string" }, json: { type: "boolean" } });
    let limit: number | undefined;
    if (typeof flags.limit === "string") {
      limit = Number(flags.limit);
      if (!/^\d+$/.test(flags.limit) || limit < 1 || limit > 1000)
        throw new UsageError(`--limit takes a whole number from 1 to 1000, got "${flags.limit}"`);
    }
    // The region answers at most AUDIT_PAGE_MAX a page: follow `next` until there are enough.
    const http = client();
    const wanted = limit ?? AUDIT_PAGE_MAX;
    const entries: AuditEntry[] = [];
    let before: string | undefined;
    do {
      const page = await http.command("audit:list", {
        limit: Math.min(AUDIT_PAGE_MAX, wanted - entries.length),
        ...(before === undefined ? {} : { before }),
      });
      entries.push(...page.entries);
      before = page.next ?? undefined;
    } while (before !== undefined && entries.length < wanted);
    if (flags.json) return say(JSON.stringify(entries, null, 2));
    say(
      entries.length === 0
        ? "No audit entries."
        : table([["AT", "BY", "ACTION", "DETAIL"], ...entries.map((e) => [e.at, e.by, e.action, e.detail])]),
    );
  },

  async racks(argv) {
    const { flags, client } = parse(argv, { json: { type: "boolean" } });
    const { racks } = await client().state();
    if (flags.json) return say(JSON.stringify(racks, null, 2));
    say(racks.length === 0 ? "No racks registered." : renderRacks(racks));
  },

  async catalogue(argv) {
    const { flags, client } = parse(argv, { json: { type: "boolean" } });
    const http = client();
    const { catalogue } = await http.command("catalogue:get", {});
    if (flags.json) return say(JSON.stringify(catalogue, null, 2));
    // The region answers from the last read: when the source fails now, say how old that is.
    const { source } = await http.state();
    if (source.error)
      process.stderr.write(
        `bootstream catalogue: the source fails now (${source.error}); this is what it offered when last read${source.lastFetch ? `, ${source.lastFetch}` : ""}\n`,
      );
    const rows = [
      ["IMAGE", "TITLE", "ARCHES", "EOL"],
      ...catalogue.ubuntu.releases.map((r) => [
        `ubuntu/${r.release}`,
        // Upstream titles say "24.04 LTS" already; a title that does not gets the flag.
        r.lts && !/\bLTS\b/.test(r.title) ? `${r.title} (LTS)` : r.title,
        catalogue.ubuntu.arches.join(","),
        r.eol ?? "-",
      ]),
      ...catalogue.other.map((o) => [`${o.os}/${o.release}`, o.title, o.arches.join(","), "-"]),
    ];
    say(
      rows.length === 1
        ? "The boot source offers nothing (is it reachable? see bootstream status)."
        : table(rows),
    );
  },

  async "auto-import"(argv) {
    const { positionals, client } = parse(argv, {}, 1, "auto-import takes on or off");
    const value = positionals[0];
    if (value !== "on" && value !== "off") throw new UsageError("auto-import takes on or off");
    const { settings } = await client().command("settings:update", { autoImport: value === "on" });
    say(`auto-import ${settings.autoImport ? "on" : "off"}`);
  },

  async settings(argv) {
    // A negative cap ("-5") would read as an unknown option: refuse it as the bad cap it is.
    if (argv[0] === "bandwidth" && argv[1] !== undefined && /^-\d/.test(argv[1]))
      throw new UsageError(`${bandwidthProblem(argv[1])}\n${SETTINGS_USAGE}`);
    const { flags, positionals, client } = parse(
      argv,
      { timezone: { type: "string" }, tz: { type: "string" } },
      2,
      SETTINGS_USAGE,
    );
    const zone = flags.timezone ?? flags.tz;
    // A flag the setting does not take is refused, never ignored.
    if (flags.timezone !== undefined && flags.tz !== undefined)
      throw new UsageError("give --timezone or --tz, not both");
    if (zone !== undefined && positionals[0] !== "window")
      throw new UsageError(
        `--timezone is for settings window, not ${positionals[0] ?? "this"}\n${SETTINGS_USAGE}`,
      );
    if (positionals[0] === "window" && positionals.length === 2) {
      if (zone !== undefined && /^(off|none)$/i.test(positionals[1]!.trim()))
        throw new UsageError("--timezone with off: no window has no zone");
      let importWindow: ImportWindow | null;
      try {
        importWindow = parseWindow(positionals[1]!, (zone ?? "UTC") as string);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const { settings } = await client().command("settings:update", { importWindow });
      return say(`import window ${describeWindow(settings.importWindow)}`);
    }
    if (positionals[0] !== "bandwidth" || positionals.length !== 2) throw new UsageError(SETTINGS_USAGE);
    const problem = bandwidthProblem(positionals[1]!);
    if (problem) throw new UsageError(`${problem}\n${SETTINGS_USAGE}`);
    const bandwidthLimit = parseBandwidth(positionals[1]!);
    const { settings } = await client().command("settings:update", { bandwidthLimit });
    say(`bandwidth ${formatBandwidth(settings.bandwidthLimit)}`);
  },

  async source(argv) {
    const { flags, positionals, client } = parse(
      argv,
      { keyring: { type: "string" } },
      2,
      "usage: bootstream source set URL [--keyring FILE|none]",
    );
    if (positionals[0] !== "set" || !positionals[1])
      throw new UsageError("usage: bootstream source set URL [--keyring FILE|none]");
    // No --keyring: the region keeps the stored one; `--keyring none`: the new source is unsigned.
    let keyring: string | undefined;
    if (flags.keyring === "none") keyring = "";
    else if (typeof flags.keyring === "string") {
      try {
        keyring = readFileSync(flags.keyring, "utf8");
      } catch (error) {
        throw new UsageError(
          `cannot read --keyring ${flags.keyring} (${(error as NodeJS.ErrnoException).code})`,
        );
      }
      if (!keyring.trim())
        throw new UsageError(`--keyring ${flags.keyring} is empty (for an unsigned source: --keyring none)`);
    }
    const { source, catalogue } = await client().command("source:update", {
      url: positionals[1],
      ...(keyring === undefined ? {} : { keyring }),
    });
    say(
      `boot source is ${source.url} (${source.keyringSet ? "signed" : "unsigned"}): ${catalogue.ubuntu.releases.length} Ubuntu releases, ${catalogue.other.length} other images`,
    );
  },

  async token(argv) {
    const { flags, positionals, client } = parse(
      argv,
      { role: { type: "string" }, name: { type: "string" } },
      2,
    );
    if (positionals[0] === "create" && positionals.length === 1) {
      const role = flags.role;
      if (role !== "admin" && role !== "viewer" && role !== "rack")
        throw new UsageError(
          typeof role === "string"
            ? `unknown role "${role}": --role takes admin, viewer or rack`
            : "token create needs --role admin|viewer|rack",
        );
      if (typeof flags.name !== "string") throw new UsageError("token create needs --name NAME");
      const { token } = await client().command("token:create", { role, name: flags.name });
      say(token);
      return;
    }
    if (positionals[0] === "revoke" && positionals[1]) {
      if (flags.role !== undefined || flags.name !== undefined)
        throw new UsageError(`token revoke takes the NAME alone: bootstream token revoke ${positionals[1]}`);
      await client().command("token:revoke", { name: positionals[1] });
      say(`token "${positionals[1]}" revoked`);
      return;
    }
    throw new UsageError(
      "usage: bootstream token create --role admin|viewer|rack --name NAME | token revoke NAME",
    );
  },
};

export function isRemoteFailure(error: unknown): error is RemoteError | CommandError | UnreachableError {
  return error instanceof RemoteError || error instanceof CommandError || error instanceof UnreachableError;
}
