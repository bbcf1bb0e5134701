import type { PresenceUser } from "@bootstream/protocol";
import type { Logger } from "../log";
import type { RegionConfig } from "../config";
import type { Database } from "./db/database";
import type { EventBus } from "./events";
import type { Health } from "./health";
import type { InternalEvents } from "./internal-events";
import type { AuditLog } from "./services/audit";
import type { SettingsStore } from "./services/settings";
import type { TokenService } from "./services/tokens";
import type { Sessions } from "./sessions";
import type { SourceService } from "./services/source";
import type { SelectionService } from "./services/selection";
import type { ImageRegistry } from "./services/images";
import type { Importer } from "./import/importer";
import type { RackRegistry } from "./racks/rack-registry";
import type { Verifier } from "./verify/verifier";

/** The region's parts, wired once in region.ts and handed to every command handler. */
export type RegionContext = {
  config: RegionConfig;
  log: Logger;
  db: Database;
  bus: EventBus;
  /** How the parts tell each other what happened (internal-events.ts). */
  internal: InternalEvents;
  health: Health;
  tokens: TokenService;
  audit: AuditLog;
  settings: SettingsStore;
  sessions: Sessions;
  source: SourceService;
  selection: SelectionService;
  images: ImageRegistry;
  importer: Importer;
  racks: RackRegistry;
  /** `store:verify`: re-hashes the store, takes corrupt files out of service, repairs them. */
  verifier: Verifier;
};

export type Actor = PresenceUser;
