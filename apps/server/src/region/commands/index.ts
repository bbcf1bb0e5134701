import { auditList } from "./audit";
import { importStart, importStop } from "./imports";
import { selectionSave } from "./selection";
import { settingsUpdate } from "./settings";
import { catalogueGet, sourceUpdate } from "./source";
import { stateGet } from "./state";
import { tokenCreate, tokenRevoke } from "./tokens";
import { rackRemove } from "./racks";
import { storeVerify } from "./store";
import type { Handlers } from "./types";

export const handlers: Handlers = {
  "state:get": stateGet,
  "catalogue:get": catalogueGet,
  "selection:save": selectionSave,
  "settings:update": settingsUpdate,
  "import:start": importStart,
  "import:stop": importStop,
  "source:update": sourceUpdate,
  "rack:remove": rackRemove,
  "token:create": tokenCreate,
  "token:revoke": tokenRevoke,
  "store:verify": storeVerify,
  "audit:list": auditList,
};
