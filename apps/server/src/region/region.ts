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
import { filesRoute } from "./files";
import { createSocketServer } from "./sockets";
import { ContentStore } from "@bootstream/images";
import { SourceService } from "./services/source";
import { SelectionService } from "./services/selection";
import { ImageRegistry } from "./services/images";
import { Importer } from "./import/importer";
import { Scheduler } from "./scheduler";
import { RackRegistry } from "./racks/rack-registry";
import { attachRackNamespace } from "./racks/rack-namespace";

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
  const store = await ContentStore.open(config.dataDir);
  const audit = new AuditLog(db, bus);
  const source = new SourceService(db, bus, log);
  const images = new ImageRegistry(db, bus);
  const selection = new SelectionService(db, bus, audit, images, source);
  let racks: RackRegistry | null = null;
  let notifyRacks = () => undefined as void;
  const importer = new Importer(db, bus, log.child({ part: "importer" }), store, source, selection, images, {
    concurrency: config.downloadConcurrency,
    pinned: () => racks?.pinned() ?? new Set(),
    onFinished: () => notifyRacks(),
  });
  racks = new RackRegistry(db, bus, images, log.child({ part: "racks" }), () => {
    void importer
      .collectGarbage()
      .catch((error: unknown) => log.error({ err: error }, "garbage collection failed"));
  });
  const region: RegionContext = {
    config,
    log,
    db,
    bus,
    tokens: new TokenService(db),
    audit,
    settings: new SettingsStore(db),
    sessions: new Sessions(bus),
    source,
    selection,
    images,
    importer,
    racks,
  };
  await bootstrapSecrets(region);
  const settings = await region.settings.get();
  const sourceState = await source.init(config.bootSourceUrl, config.bootSourceKeyring);
  const savedSelection = await selection.load();
  await images.load();
  await racks.load();
  images.setChangeListener(() => {
    void racks
      .refreshManifest()
      .catch((error: unknown) => log.error({ err: error }, "manifest refresh failed"));
  });
  bus.seed((live) => {
    live.settings = settings;
    live.source = sourceState;
    live.selection = savedSelection;
    for (const image of images.states()) live.images.set(image.id, image);
    for (const rack of racks.states()) live.racks.set(rack.name, rack);
  });
  const rackSecretHash = await region.settings.getInternal("rackSecretHash");
  const checkRackSecret = async (secret: unknown) =>
    typeof secret === "string" && secret.length <= 512 && hashToken(secret) === rackSecretHash;
  const resume = await importer.recover();

  const metrics = new Metrics();
  const commands = new CommandRunner(handlers, region);
  const app = createHttpApp(region, commands, metrics, filesRoute(store, checkRackSecret));
  const httpServer = createServer(app.callback());
  const io = createSocketServer(httpServer, region, commands, metrics);
  bus.attach(io);
  const rackNamespace = attachRackNamespace(io, racks, checkRackSecret, log.child({ part: "racks" }));
  notifyRacks = () => void rackNamespace.emit("sync:now");
  region.sessions.attach(io);

  await listen(httpServer, config.port, config.host);
  const port = (httpServer.address() as AddressInfo).port;
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
  log.info({ url, database: db.kind, dataDir: config.dataDir }, "region listening");

  const scheduler = new Scheduler(log);
  scheduler.every("region-import", config.importSchedule, async () => {
    if ((await region.settings.get()).autoImport) importer.request("schedule");
  });
  // A crash mid-import resumes it; a fresh region reads its source and imports the default selection.
  if (resume) importer.request(resume);
  else if (!(await selection.initialised()) && settings.autoImport) importer.request("selection");

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      log.info("region stopping");
      scheduler.stop();
      httpServer.closeIdleConnections();
      await importer.close();
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
