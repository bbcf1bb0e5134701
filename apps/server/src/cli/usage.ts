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
  bootstream rack --region URL --name NAME --secret S --data-dir DIR
                                                            run one rack controller agent
  bootstream demo                                           offline demo: local mirror, region, two racks
  bootstream mirror sync SOURCE_URL DIR [FILTER...] [...]   copy a real source (verified, filtered, resumable) for air-gapped sites
  bootstream mirror create DIR [--sign KEY.asc] [...]       write a SYNTHETIC mirror (made-up payloads, for tests and demos)
  bootstream mirror add-version DIR [--sign KEY.asc]       publish a newer synthetic version of every product in DIR
  bootstream mirror keygen DIR                              write a signing key pair for --sign

Client commands (--url / BOOTSTREAM_URL, --token / BOOTSTREAM_TOKEN):
  bootstream status [--json] [--watch]
  bootstream select OS/RELEASE --arch ARCH[,ARCH...]
  bootstream deselect OS/RELEASE [--arch ARCH[,ARCH...]]
  bootstream import | stop-import
  bootstream auto-import on|off
  bootstream settings bandwidth 20MB/s|off                 cap the region's upstream downloads (all together)
  bootstream source set URL [--keyring FILE]
  bootstream token create --role admin|viewer --name NAME
  bootstream token revoke NAME

Region settings (environment variable, or the matching --flag):
  PORT (5240)  HOST (127.0.0.1)  DATA_DIR (./data)  DATABASE_URL  REDIS_URL
  BOOT_SOURCE_URL  BOOT_SOURCE_KEYRING  ADMIN_TOKEN  RACK_SECRET
  IMPORT_SCHEDULE ("0 * * * *")  RACK_SYNC_SCHEDULE ("*/5 * * * *")  DOWNLOAD_CONCURRENCY (4)  LOG_LEVEL (info)
  LEADER_LEASE (15s)

Exit codes: 0 success, 1 refused or failed, 2 usage error.
`;
