/** A command that could not do its work, for a reason said in one line: printed on stderr, exit 1. */
export class CommandFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandFailure";
  }
}

/** A mistake in how a command was called: printed on stderr, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const HELP = `bootstream — select and import boot images

Processes:
  bootstream region [--port N --host H --data-dir DIR ...]   run the region (HTTP + Socket.IO, scheduler, importer)
  RACK_TOKEN=T bootstream rack --region URL --name NAME --data-dir DIR
                                                            run one rack controller agent (or RACK_SECRET=S)
  bootstream demo                                           offline demo: local mirror, region, two racks
  bootstream mirror sync SOURCE_URL DIR [FILTER...] [...]   copy a real source (verified, filtered, resumable) for air-gapped sites
  bootstream mirror create DIR [--sign KEY.asc] [...]       write a SYNTHETIC mirror (made-up payloads, for tests and demos)
  bootstream mirror add-version DIR [--sign KEY.asc]       publish a newer synthetic version of every product in DIR
  bootstream mirror keygen DIR                              write a signing key pair for --sign

Client commands (--url / BOOTSTREAM_URL, --token / BOOTSTREAM_TOKEN):
  bootstream status [--json] [--watch]
  bootstream select OS/RELEASE [--arch ARCH[,ARCH...]]          --arch defaults to amd64
  bootstream deselect OS/RELEASE [--arch ARCH[,ARCH...]]
  bootstream import | stop-import
  bootstream auto-import on|off
  bootstream settings bandwidth 20MiB/s|off                 cap the region's upstream downloads (all together)
  bootstream settings window 01:00-05:00|off [--timezone UTC]
                                                            when scheduled imports may run (manual ones run at once)
  bootstream source set URL [--keyring FILE|none]
  bootstream token create --role admin|viewer|rack --name NAME   a rack token registers only rack NAME
  bootstream token revoke NAME
  bootstream audit [--limit N] [--json]                     who changed what, newest first
  bootstream racks [--json]                                 the registered rack controllers
  bootstream rack remove NAME                               forget a rack that is gone for good
  bootstream catalogue [--json]                             what the boot source offers
  bootstream verify [--repair] [--watch]                    re-hash the region's store; --repair fetches corrupt files again

Local (no region needed, run where the data lives):
  bootstream admin-token --name NAME [--data-dir DIR | --database-url URL]
                                                            print a new admin token written to the database

Every command takes --help.

Region settings (environment variable, or the matching --flag):
  PORT (5240)  HOST (127.0.0.1)  DATA_DIR (./data)  DATABASE_URL  REDIS_URL
  BOOT_SOURCE_URL  BOOT_SOURCE_KEYRING  ADMIN_TOKEN  RACK_SECRET (secrets: at least 32 characters)
  IMPORT_SCHEDULE ("0 * * * *")  RACK_SYNC_SCHEDULE ("*/5 * * * *")  DOWNLOAD_CONCURRENCY (4)  LOG_LEVEL (info)
  LEADER_LEASE (15s)  ADVERTISE_URL (http://HOST:PORT)  VERIFY_SCHEDULE ("0 3 * * 0")  DOWNLOAD_MIN_RATE (1KiB/60s)
  RATE_LIMIT_TOKEN (100)  RATE_LIMIT_ADDRESS (200)  SOCKETS_PER_TOKEN (100)  SOCKETS_PER_ADDRESS (256)
  (what each means: the README's Configuration table)

Exit codes: 0 success, 1 refused or failed, 2 usage error.
`;

const CLIENT = "[--url URL] [--token TOKEN]";

export const SETTINGS_USAGE =
  "usage: bootstream settings bandwidth 20MiB/s|off\n       bootstream settings window 01:00-05:00|off [--timezone ZONE]";

/** `bootstream COMMAND --help`: one usage line per command, on stdout, exit 0. */
export const COMMAND_HELP: Record<string, string> = {
  region:
    "usage: bootstream region [--port N] [--host H] [--data-dir DIR] [--database-url URL] [--redis-url URL] ...\n" +
    "Every region setting listed by `bootstream --help` may be given as its --flag (lower case, dashes) or environment variable.\n",
  demo: "usage: bootstream demo [--port N] [--host H] [--data-dir DIR] [--rate BYTES_PER_S]\nOffline demo: a local mirror, a region and two racks.\n",
  status: `usage: bootstream status ${CLIENT} [--json] [--watch]\n`,
  select: `usage: bootstream select OS/RELEASE [--arch ARCH[,ARCH...]] ${CLIENT}\nAdds the architectures (default amd64) to the release's selection and saves it.\n`,
  deselect: `usage: bootstream deselect OS/RELEASE [--arch ARCH[,ARCH...]] ${CLIENT}\n`,
  import: `usage: bootstream import ${CLIENT}\n`,
  "stop-import": `usage: bootstream stop-import ${CLIENT}\n`,
  "auto-import": `usage: bootstream auto-import on|off ${CLIENT}\n`,
  source: `usage: bootstream source set URL [--keyring FILE|none] ${CLIENT}\n`,
  token: `usage: bootstream token create --role admin|viewer|rack --name NAME ${CLIENT}\n       bootstream token revoke NAME ${CLIENT}\nA rack token registers only the rack NAME (give it to that agent as RACK_TOKEN) and reads /files.\n`,
  audit: `usage: bootstream audit [--limit N] [--json] ${CLIENT}\nN from 1 to 1000 (default 100), newest first.\n`,
  racks: `usage: bootstream racks [--json] ${CLIENT}\n`,
  "rack remove": `usage: bootstream rack remove NAME ${CLIENT}\n`,
  settings:
    `usage: bootstream settings bandwidth 20MiB/s|off ${CLIENT}\n` +
    `       bootstream settings window 01:00-05:00|off [--timezone ZONE] ${CLIENT}\n` +
    "A window is local time in ZONE (an IANA name, default UTC); scheduled imports run only inside it.\n",
  catalogue: `usage: bootstream catalogue [--json] ${CLIENT}\n`,
  verify:
    `usage: bootstream verify [--repair] [--watch] ${CLIENT}\n` +
    "Re-hashes every file of the region's store (in the background; imports and racks go on) and waits for the end.\n" +
    "A corrupt file is taken out of service at once; --repair fetches it again from the boot source.\n" +
    "--watch shows the progress (a bar on a terminal, a line per 10% otherwise).\n" +
    "Exit codes: 0 clean or every corrupt file repaired, 1 corrupt files left or the run failed, 2 usage error.\n",
  "admin-token":
    "usage: bootstream admin-token --name NAME [--data-dir DIR | --database-url URL]\n" +
    "Prints a new admin token written straight to the database (DATA_DIR / DATABASE_URL by default); the region may be stopped.\n",
};

/** --help or -h before any `--`. */
export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === "--help" || a === "-h");
}
