import type { PresenceUser } from "@bootstream/protocol";
import type { Logger } from "../log";
import type { RegionConfig } from "../config";
import type { Database } from "./db/database";
import type { EventBus } from "./events";
import type { AuditLog } from "./services/audit";
import type { SettingsStore } from "./services/settings";
import type { TokenService } from "./services/tokens";
import type { Sessions } from "./sessions";

/** The region's parts, wired once in region.ts and handed to every command handler. */
export type RegionContext = {
  config: RegionConfig;
  log: Logger;
  db: Database;
  bus: EventBus;
  tokens: TokenService;
  audit: AuditLog;
  settings: SettingsStore;
  sessions: Sessions;
};

export type Actor = PresenceUser;
