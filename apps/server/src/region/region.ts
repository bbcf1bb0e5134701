import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ContentStore, splitCredentials } from "@bootstream/images";
import { CommandError, type EventPayloads } from "@bootstream/protocol";
import type { RegionConfig } from "../config";
import type { Logger } from "../log";
import { Database } from "./db/database";
import { lockDataDir, noteNewPaths, prepareDataDir, revealSecrets, type TakenBack } from "./data-dir";
import { EventBus, PEOPLE_ROOM } from "./events";
import { Health, probePayload } from "./health";
import { AuditLog } from "./services/audit";
import { SettingsStore } from "./services/settings";
import { TokenService, generateSecret, hashToken } from "./services/tokens";
import { hashConfiguredSecret, isKdfHash, secretMatches } from "./services/secret-hash";
import { SourceService } from "./services/source";
import { SelectionService } from "./services/selection";
import { ImageRegistry } from "./services/images";
import { Sessions } from "./sessions";
import type { RegionContext } from "./context";
import { CommandRunner } from "./commands/dispatch";
import { handlers } from "./commands";
import { Metrics } from "./metrics";
import { createHttpApp } from "./http";
import { filesRoute } from "./files";
import { createSocketServer } from "./sockets";
import { ClientLimits, DEFAULT_CLIENT_LIMITS } from "./client-limits";
import { Importer } from "./import/importer";
import { windowClockFromEnv } from "./clock";
import { RackRegistry } from "./racks/rack-registry";
import { attachRackNamespace } from "./racks/rack-namespace";
import { RackHub } from "./racks/rack-hub";
import { RackRelay } from "./cluster/rack-relay";
import { OnDemandFiles } from "./cluster/on-demand";
import { RackCredentials } from "./racks/credentials";
import { Engine } from "./engine";
import { InternalEvents } from "./internal-events";
import { Leadership } from "./cluster/leadership";
import { ClusterLink } from "./cluster/link";
import { RedisLink } from "./cluster/redis";
import { leaderMetric } from "./cluster/metrics";
import { PeerDirectory } from "./cluster/peers";
import { PeerSync } from "./cluster/peer-sync";
import { createDownloadAgent } from "@bootstream/images";
import { Verifier } from "./verify/verifier";

/** A new client's first snapshot waits at most this long for a follower to synchronise with the leader. */
const FIRST_SNAPSHOT_WAIT_MS = 5_000;

export type RegionHandle = {
  url: string;
  port: number;
  context: RegionContext;
  close(): Promise<void>;
};

/** What a start that failed before it listened took back in DATA_DIR (see `startRegion`). */
const takenBack = new WeakMap<object, TakenBack>();

/** The paths a failed start removed and kept, when `error` is one that failed before it listened. */
export function takenBackBy(error: unknown): TakenBack | null {
  return typeof error === "object" && error !== null ? (takenBack.get(error) ?? null) : null;
}

/**
 * Opens the database, makes first-start secrets, serves HTTP + Socket.IO on one port, and runs the
 * engine (importer, schedule, racks) when this node leads — always, on SQLite.
 *
 * A start that fails before it listens (the port taken, Redis unreachable, a database it cannot
 * open) leaves DATA_DIR as it found it: the directories and SQLite files it created are removed
 * (a directory only when empty), the generated secrets are taken back, and `takenBackBy(error)`
 * says what went and what had to stay. A start that fails later changes nothing back.
 */
export async function startRegion(config: RegionConfig, log: Logger): Promise<RegionHandle> {
  const fresh = await noteNewPaths(config.dataDir, config.databaseUrl === null);
  const progress: StartProgress = { db: null, listening: false };
  try {
    return await start(config, log, progress);
  } catch (error) {
    if (progress.listening) throw error;
    await progress.db?.close().catch(() => undefined);
    await progress.unlock?.();
    const result = await fresh.undo();
    if (result.removed.length > 0 || result.kept.length > 0) {
      log.warn(result, "the failed start removed what it had created in DATA_DIR");
      if (typeof error === "object" && error !== null) takenBack.set(error, result);
    }
    throw error;
  }
}

type StartProgress = { db: Database | null; listening: boolean; unlock?: () => Promise<void> };

async function start(config: RegionConfig, log: Logger, progress: StartProgress): Promise<RegionHandle> {
  await prepareDataDir(config.dataDir, config.databaseUrl === null, log);
  // Before the database or the store is touched: a second region on this data dir stops here.
  const unlock = await lockDataDir(config.dataDir);
  progress.unlock = unlock;
  const db = await Database.open({
    dataDir: config.dataDir,
    databaseUrl: config.databaseUrl,
    leaseMs: config.leaderLeaseMs,
    log: log.child({ part: "database" }),
  });
  progress.db = db;
  const bus = new EventBus();
  const settings = new SettingsStore(db);
  const health = new Health({
    redis: Boolean(config.redisUrl),
    role: config.databaseUrl ? "follower" : "single",
    // A write that needs fresh pages, undone in the same transaction: it succeeds once space returns.
    probe: () => settings.probe(probePayload()),
  });
  db.observe(health);
  bus.seed((live) => (live.health = health.state()));
  health.subscribe((state) => bus.seed((live) => (live.health = state)));
  const store = await ContentStore.open(config.dataDir, { private: true });
  const audit = new AuditLog(db, bus);
  const source = new SourceService(db, bus, log);
  const internal = new InternalEvents(log);
  const images = new ImageRegistry(db, bus, internal, log);
  const selection = new SelectionService(db, bus, audit, images, source);
  // On a cluster every node has its own store: the leader asks its peers before upstream.
  let peerSync: PeerSync | null = null;
  const importer = new Importer(db, bus, log.child({ part: "importer" }), store, source, selection, images, {
    concurrency: config.downloadConcurrency,
    ...(config.downloadMinRate === undefined ? {} : { minRate: config.downloadMinRate }),
    events: internal,
    clock: windowClockFromEnv(process.env, log),
    ...(config.databaseUrl
      ? {
          peers: {
            fetchVerified: (file, signal, onProgress) =>
              peerSync?.fetchVerified(file, signal, onProgress) ?? Promise.resolve(false),
          },
          // A run that loses the database stops leading here; the next leader resumes it.
          onDatabaseLost: (reason: string) => leadership.lost(reason),
        }
      : {}),
  });
  const racks = new RackRegistry(db, bus, images, log.child({ part: "racks" }), internal);
  // Who listens to what (see internal-events.ts). The manifest is an ordered consumer: one at a time.
  internal.on("image.committed", () => racks.refreshManifest(), { ordered: true });
  internal.on("racks.caughtUp", () => importer.requestGarbageCollection());
  const verifier = new Verifier({
    db,
    store,
    bus,
    internal,
    images,
    settings,
    audit,
    refetch: (file, signal, onProgress) => importer.refetch(file, signal, onProgress),
    log: log.child({ part: "verify" }),
  });
  // A corrupt file out of service (or back in) changes which images the racks' manifest may offer.
  internal.on("store.changed", () => racks.refreshManifest(), { ordered: true });
  // An import may have fetched a corrupt file again (it plans it as missing): it is back in service.
  internal.on("import.finished", () => verifier.reconcile());
  const region: RegionContext = {
    config,
    log,
    db,
    bus,
    internal,
    health,
    tokens: new TokenService(db),
    audit,
    settings,
    sessions: new Sessions(bus),
    source,
    selection,
    images,
    importer,
    racks,
    verifier,
  };
  // Generated secrets are shown once the port is bound; a start that fails before takes them back.
  const firstStart = await bootstrapSecrets(region);
  const boot = await source.init(config.bootSourceUrl, config.bootSourceKeyring);
  if (config.bootSourceUrlGiven && boot.url !== splitCredentials(config.bootSourceUrl).url) {
    log.warn(
      { configured: splitCredentials(config.bootSourceUrl).url, source: boot.url },
      "BOOT_SOURCE_URL is not the boot source: it sets the first one only; the database's stands (change it with bootstream source set)",
    );
  }
  // Followers answer snapshots too: seed what they show from the database until the leader speaks.
  await selection.load();
  await images.load();
  await verifier.load();
  const stored = await settings.get();
  importer.setBandwidthLimit(stored.bandwidthLimit);
  // settings:update changes the cap of the import running now, not only the next one.
  bus.subscribe((event, payload) => {
    if (event === "settings")
      importer.setBandwidthLimit((payload as EventPayloads["settings"]).settings.bandwidthLimit);
  });
  bus.seed((live) => {
    live.settings = stored;
    live.source = source.state();
    live.selection = selection.get();
    live.setImages(images.states());
  });

  const rackCredentials = new RackCredentials(
    region.tokens,
    (await region.settings.getInternal("rackSecretHash")) ?? null,
  );
  const peerSecret = config.databaseUrl ? await region.settings.getInternal("peerSecret") : null;
  const peerSecretHash = peerSecret === null ? null : hashToken(peerSecret);
  const checkPeerSecret = (secret: unknown) =>
    peerSecretHash !== null &&
    typeof secret === "string" &&
    secret.length <= 512 &&
    hashToken(secret) === peerSecretHash;

  const metrics = new Metrics(bus.live);
  const commands = new CommandRunner(handlers, region);
  const limits = new ClientLimits(config.limits ?? DEFAULT_CLIENT_LIMITS, log.child({ part: "clients" }));
  // A rack asking this node for a file it lacks yet gets it once fetched from a peer (on a cluster).
  let onDemand: OnDemandFiles | null = null;
  const app = createHttpApp(
    region,
    commands,
    metrics,
    filesRoute(store, rackCredentials, checkPeerSecret, (sha) =>
      onDemand ? onDemand.get(sha).catch(() => "unknown" as const) : Promise.resolve("unknown" as const),
    ),
    limits,
  );
  const httpServer = createServer(app.callback());
  const redis = config.redisUrl
    ? await RedisLink.create(
        config.redisUrl,
        config.databaseUrl ?? config.dataDir,
        health,
        log.child({ part: "redis" }),
      )
    : null;
  // On a cluster (PostgreSQL and Redis), what the followers' clients are shown comes from the leader.
  let link: ClusterLink | null = null;
  const io = createSocketServer(httpServer, region, commands, metrics, limits, () =>
    link ? link.whenKnown(FIRST_SNAPSHOT_WAIT_MS) : Promise.resolve(),
  );
  if (redis && config.databaseUrl)
    link = new ClusterLink(
      redis,
      io,
      bus,
      region.sessions,
      () => leadership.isLeader,
      log.child({ part: "cluster" }),
    );
  await redis
    ?.connect(io, (from, event, payload) => link?.tap(from, event, payload) ?? true)
    .catch(firstStart.failed);
  bus.attach(io);
  // Health is this node's own: its clients only, unnumbered (see docs/protocol.md, `health`).
  health.subscribe((state) => io.local.to(PEOPLE_ROOM).emit("health", { health: state }));
  region.sessions.attach(io);
  // The leader's door for racks on any node; on a follower, racks are relayed to it through Redis.
  const hub = new RackHub(
    racks,
    (socketId) => {
      const local = rackNamespace.sockets.get(socketId);
      if (local) local.emit("manifest", racks.manifest);
      else rackNamespace.to(socketId).emit("manifest", racks.manifest);
    },
    log.child({ part: "racks" }),
    undefined,
    config.failureLogEveryMs,
  );
  let relay: RackRelay | null = null;
  const rackNamespace = attachRackNamespace(
    io,
    hub,
    () => relay,
    rackCredentials,
    () => engine.running,
    log.child({ part: "racks" }),
    limits,
  );
  const engine = new Engine(region, rackNamespace, hub);
  internal.on("import.finished", () => engine.notifyRacks());
  // The import window applies at once on the leader (a follower's importer runs nothing).
  bus.subscribe((event, payload) => {
    if (event === "settings" && engine.running)
      importer.setImportWindow((payload as EventPayloads["settings"]).settings.importWindow);
  });
  internal.on("manifest.changed", ({ manifest }) => {
    rackNamespace.emit("manifest", manifest);
  });

  const roleChanged = () => {
    health.setRole(leadership.role);
    if (leadership.databaseReachable) health.pingSucceeded();
    else health.pingFailed(new Error("the leader lease cannot be read or renewed"));
  };
  const leadership = new Leadership({
    db,
    leaseMs: config.leaderLeaseMs ?? 15_000,
    log: log.child({ part: "leadership" }),
    // A leader imports (asking its peers first); a follower fetches from its peers what it lacks.
    onLead: async () => {
      await peerSync?.stop();
      await engine.start();
      link?.leading();
      await verifier.lead();
    },
    onFollow: async () => {
      await verifier.close();
      await engine.halt();
      void peerSync?.start();
    },
    onChange: roleChanged,
  });
  // The event fence: a node that stops leading sends nothing more from its old term's memory.
  if (config.databaseUrl) bus.gate(() => leadership.mayAnnounce);
  leaderMetric(metrics, () => leadership.role);
  const isLeader = () => leadership.isLeader;
  if (link && redis) {
    const cluster = link;
    await cluster.attach(commands, () => region.sessions.changed());
    commands.route(isLeader, (name, payload, actor) => cluster.forward(name, payload, actor));
    region.sessions.follow(isLeader, () => cluster.presence());
    relay = new RackRelay({
      redis,
      hub,
      leading: () => engine.running,
      sockets: () =>
        [...rackNamespace.sockets.values()].flatMap((socket) =>
          socket.data.name ? [{ name: socket.data.name, socket: socket.id }] : [],
        ),
      log: log.child({ part: "racks" }),
    });
    await relay.attach();
  } else if (config.databaseUrl) {
    // Several nodes on one PostgreSQL without Redis: only the leader can act; say so, don't guess.
    commands.route(isLeader, async () => ({
      ok: false,
      error: new CommandError(
        "internal",
        "this region node is not leading and has no REDIS_URL to reach the leader",
      ).toBody(),
    }));
    region.sessions.follow(isLeader, () => undefined);
  }

  await listen(httpServer, config.port, config.host).catch(firstStart.failed);
  progress.listening = true;
  const port = (httpServer.address() as AddressInfo).port;
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
  await firstStart.reveal();
  log.info({ url, database: db.kind, dataDir: config.dataDir }, "region listening");
  let directory: PeerDirectory | null = null;
  const peerAgent = config.databaseUrl
    ? createDownloadAgent({ connections: config.downloadConcurrency * 2 })
    : null;
  if (peerAgent && peerSecret !== null) {
    const advertised = config.advertiseUrl ?? url;
    if (!config.advertiseUrl && ["0.0.0.0", "::", "[::]"].includes(config.host))
      log.warn({ url: advertised }, "set ADVERTISE_URL: peers and racks cannot reach a wildcard address");
    directory = new PeerDirectory({
      db,
      nodeId: leadership.nodeId,
      url: advertised,
      secret: peerSecret,
      leaseMs: config.leaderLeaseMs ?? 15_000,
      dispatcher: peerAgent,
      log: log.child({ part: "peers" }),
    });
    await directory.start();
    peerSync = new PeerSync({
      db,
      store,
      directory,
      dispatcher: peerAgent,
      // Twice the leader's: following its downloads costs little, and a file it has not started yet
      // (a tie in its biggest-first order) must not keep one it is downloading unfollowed.
      concurrency: config.downloadConcurrency * 2,
      intervalMs: Math.max(500, Math.floor((config.leaderLeaseMs ?? 15_000) / 5)),
      metrics,
      log: log.child({ part: "peer-sync" }),
    });
    const sync = peerSync;
    onDemand = new OnDemandFiles({
      sizeOf: async (sha) => {
        const rows = (await db.source.query(`SELECT size FROM image_file WHERE sha256 = $1 LIMIT 1`, [
          sha,
        ])) as { size: string | number }[];
        return rows.length === 0 ? null : Number(rows[0]!.size);
      },
      store,
      fetch: (file, signal) => sync.fetchVerified(file, signal, () => undefined),
      log: log.child({ part: "peer-sync" }),
    });
    log.info({ advertise: advertised }, "peers reach this node here");
    await peerSync.start();
  }
  await leadership.start();

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      log.info("region stopping");
      httpServer.closeIdleConnections();
      await leadership.stop();
      await peerSync?.stop();
      await verifier.close();
      await onDemand?.close();
      relay?.close();
      await engine.stop();
      hub.close();
      await internal.settle();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      httpServer.closeAllConnections();
      bus.close();
      health.close();
      limits.close();
      region.sessions.close();
      link?.close();
      await redis?.close();
      await directory?.stop();
      await peerAgent?.close();
      await db.close();
      await unlock();
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
 * generated). Generated values are shown once (`revealSecrets`), after the port is bound, never in
 * the log stream. `failed` (a start that fails before that: EADDRINUSE, Redis unreachable) takes
 * them back unshown, so the next start generates and shows new ones; then it rethrows.
 */
async function bootstrapSecrets(
  region: RegionContext,
): Promise<{ reveal: () => Promise<void>; failed: (error: unknown) => Promise<never> }> {
  const shown: string[] = [];
  const undo: (() => Promise<void>)[] = [];
  const { generated } = await region.tokens.bootstrap(region.config.adminToken);
  if (generated) {
    shown.push(`Admin token (shown once; keep it): ${generated}`);
    undo.push(() => region.tokens.forgetBootstrap(generated));
  }
  // Peer region nodes fetch files from each other with this; every node reads it from the database.
  if (region.config.databaseUrl) await region.settings.setInternalOnce("peerSecret", generateSecret());
  // Configured secrets are kept as a salted KDF hash and checked with it once here, so their
  // requests cost one fast hash; one stored by an older version as SHA-256 is rehashed.
  if ((await region.tokens.rememberConfigured(region.config.adminToken)) === "unknown") {
    region.log.warn(
      "ADMIN_TOKEN is not a token of this region: it makes the first admin token on a new database only, and is ignored here (for another admin token: bootstream admin-token --name NAME, or bootstream token create)",
    );
  }
  const stored = await region.settings.getInternal("rackSecretHash");
  if (region.config.rackSecret) {
    const current =
      stored !== null && isKdfHash(stored) && (await secretMatches(region.config.rackSecret, stored));
    if (!current)
      await region.settings.setInternal(
        "rackSecretHash",
        await hashConfiguredSecret(region.config.rackSecret),
      );
  } else if (!stored) {
    const secret = generateSecret();
    const hash = hashToken(secret);
    const standing = await region.settings.setInternalOnce("rackSecretHash", hash);
    if (standing === hash) {
      shown.push(`Rack secret (shown once; site-wide, a rack token per rack is stronger): ${secret}`);
      undo.push(() => region.settings.deleteInternalIf("rackSecretHash", hash));
    }
  }
  return {
    reveal: async () => {
      if (shown.length > 0) await revealSecrets(region.config.dataDir, shown, region.log);
    },
    failed: async (error) => {
      for (const step of undo) {
        try {
          await step();
        } catch (undoError) {
          region.log.error(
            { err: undoError },
            "could not take back the secrets this failed first start generated: use `bootstream admin-token`",
          );
        }
      }
      if (undo.length > 0)
        region.log.warn(
          "the start failed before the generated secrets were shown: the next start makes new ones",
        );
      throw error;
    },
  };
}
