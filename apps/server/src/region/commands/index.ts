import { CommandError } from "@bootstream/protocol";
import { auditList } from "./audit";
import { settingsUpdate } from "./settings";
import { stateGet } from "./state";
import { tokenCreate, tokenRevoke } from "./tokens";
import type { Handler, Handlers } from "./types";

const notYet =
  (name: string): Handler<never> =>
  async () => {
    throw new CommandError("internal", `${name} is not available in this build yet`);
  };

export const handlers: Handlers = {
  "state:get": stateGet,
  "catalogue:get": notYet("catalogue:get"),
  "selection:save": notYet("selection:save"),
  "settings:update": settingsUpdate,
  "import:start": notYet("import:start"),
  "import:stop": notYet("import:stop"),
  "source:update": notYet("source:update"),
  "rack:remove": notYet("rack:remove"),
  "token:create": tokenCreate,
  "token:revoke": tokenRevoke,
  "audit:list": auditList,
};
