import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { commandSchemas } from "@bootstream/protocol";
import { parseDatabaseUrl } from "../config";
import { SQLITE_FILE } from "../region/data-dir";
import { Database } from "../region/db/database";
import { TokenService } from "../region/services/tokens";
import { CommandFailure, UsageError } from "./usage";

/**
 * `bootstream admin-token --name NAME [--data-dir DIR | --database-url URL]`: for an operator with
 * local access who lost the first token (as `maas createadmin`). Writes straight to the database,
 * so it works on a stopped region; the audit says it was made locally.
 */
export async function adminTokenCommand(argv: string[]): Promise<void> {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args: argv,
      options: {
        name: { type: "string" },
        "data-dir": { type: "string" },
        "database-url": { type: "string" },
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (typeof flags.name !== "string") throw new UsageError("admin-token needs --name NAME");
  const parsed = commandSchemas["token:create"].safeParse({ role: "admin", name: flags.name });
  if (!parsed.success) throw new UsageError(`--name "${flags.name}" is not a valid token name`);
  const name = { data: parsed.data.name };
  if (flags["data-dir"] !== undefined && flags["database-url"] !== undefined)
    throw new UsageError("give --data-dir or --database-url, not both");
  let databaseUrl: string | null;
  try {
    databaseUrl = parseDatabaseUrl(
      (flags["database-url"] as string | undefined) ?? process.env.DATABASE_URL?.trim() ?? null,
    );
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (flags["data-dir"] !== undefined) databaseUrl = null;
  const dataDir = path.resolve((flags["data-dir"] as string | undefined) ?? process.env.DATA_DIR ?? "./data");
  // A token in a database of its own is no token at all: a mistyped --data-dir must not make one.
  const sqliteFile = path.join(dataDir, SQLITE_FILE);
  if (databaseUrl === null && !existsSync(sqliteFile)) {
    throw new CommandFailure(
      `no database at ${sqliteFile}: is --data-dir (or DATA_DIR) the region's data dir? (a region makes it on its first start)`,
    );
  }
  let db: Database;
  try {
    db = await Database.open({ dataDir, databaseUrl });
  } catch (error) {
    const where = databaseUrl === null ? sqliteFile : withoutPassword(databaseUrl);
    throw new CommandFailure(`cannot open the database at ${where}: ${(error as Error).message}`);
  }
  try {
    const { token } = await new TokenService(db).create("admin", name.data, {
      by: "admin-token (local)",
      action: "token:create",
      detail: `admin token "${name.data}" made with bootstream admin-token`,
    });
    process.stdout.write(`${token}\n`);
  } finally {
    await db.close();
  }
}

/** A database URL fit to print: its password replaced by "***". */
function withoutPassword(url: string): string {
  const parsed = URL.parse(url);
  if (parsed === null) return "the DATABASE_URL given";
  if (parsed.password !== "") parsed.password = "***";
  return parsed.href;
}
