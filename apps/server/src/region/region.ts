import { mkdir } from "node:fs/promises";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { RegionConfig } from "../config";
import type { Logger } from "../log";
import { Database } from "./db/database";
import { EventBus } from "./events";
import { AuditLog } from "./services/audit";
import { SettingsStore } from "./services/settings";
import { TokenService, generateSecret, hashToken } from "./services/tokens";
import { Sessions } from "./sessions";
import type { RegionContext } from "./context";
import { CommandRunner } from "./commands/dispatch";
import { handlers } from "./commands";
import { Metrics } from "./metrics";
import { createHttpApp } from "./http";
import { createSocketServer } from "./sockets";

export type RegionHandle = {
  url: string;
  port: number;
  context: RegionContext;
  close(): Promise<void>;
};

/** Opens the database, makes first-start secrets, and serves HTTP + Socket.IO on one port. */
export async function startRegion(config: RegionConfig, log: Logger): Promise<RegionHandle> {
  await mkdir(config.dataDir, { recursive: true });
  const db = await Database.open({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  const bus = new EventBus();
  const region: RegionContext = {
    config,
    log,
    db,
    bus,
    tokens: new TokenService(db),
    audit: new AuditLog(db, bus),
    settings: new SettingsStore(db),
    sessions: new Sessions(bus),
  };
  await bootstrapSecrets(region);
  const settings = await region.settings.get();
  bus.seed((live) => {
    live.settings = settings;
  });

  const metrics = new Metrics();
  const commands = new CommandRunner(handlers, region);
  const app = createHttpApp(region, commands, metrics);
  const httpServer = createServer(app.callback());
  const io = createSocketServer(httpServer, region, commands, metrics);
  bus.attach(io);
  region.sessions.attach(io);

  await listen(httpServer, config.port, config.host);
  const port = (httpServer.address() as AddressInfo).port;
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
  log.info({ url, database: db.kind, dataDir: config.dataDir }, "region listening");

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      log.info("region stopping");
      httpServer.closeIdleConnections();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      httpServer.closeAllConnections();
      bus.close();
      region.sessions.close();
      await db.close();
      log.info("region stopped");
    })());

  return { url, port, context: region, close };
}

function listen(server: HttpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/**
 * First start: the admin token (ADMIN_TOKEN or generated) and the rack secret (RACK_SECRET or
 * generated). Generated values are printed once on stdout — not to the log, which may be shipped.
 */
async function bootstrapSecrets(region: RegionContext): Promise<void> {
  const { generated } = await region.tokens.bootstrap(region.config.adminToken);
  if (generated) {
    process.stdout.write(`\nAdmin token (shown once; keep it): ${generated}\n\n`);
  }
  const stored = await region.settings.getInternal("rackSecretHash");
  if (region.config.rackSecret) {
    const hash = hashToken(region.config.rackSecret);
    if (hash !== stored) await region.db.write((m) => region.settings.setInternal(m, "rackSecretHash", hash));
  } else if (!stored) {
    const secret = generateSecret();
    await region.db.write((m) => region.settings.setInternal(m, "rackSecretHash", hashToken(secret)));
    process.stdout.write(`\nRack secret (shown once; give it to rack agents): ${secret}\n\n`);
  }
}
