import { z } from "zod";
import {
  MAX_BANDWIDTH_LIMIT,
  MIN_BANDWIDTH_LIMIT,
  canonicalTimeZone,
  windowProblem,
} from "@bootstream/images/present";
import { rackNameSchema } from "./rack";
import { AUDIT_PAGE_MAX } from "./fold";

import type {
  AuditEntry,
  Catalogue,
  ImportState,
  Selection,
  Settings,
  Snapshot,
  SourceState,
  VerifyState,
} from "./state";

// Names in the contract are lowercase tokens; keeping them tight keeps junk out of the database and the UI.
const name = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, "lowercase letters, digits, '.', '_' and '-' only");
const personName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9 ._@-]*$/, "letters, digits, space, '.', '_', '@' and '-' only");

export const selectionItemSchema = z.strictObject({
  os: name,
  release: name,
  arches: z.array(name).min(1).max(32),
});

const empty = z.strictObject({});

export const commandSchemas = {
  "state:get": empty,
  "catalogue:get": empty,
  "selection:save": z.strictObject({
    revision: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    items: z.array(selectionItemSchema).max(500),
  }),
  "settings:update": z
    .strictObject({
      autoImport: z.boolean().optional(),
      bandwidthLimit: z
        .number()
        .int()
        .min(MIN_BANDWIDTH_LIMIT)
        .max(MAX_BANDWIDTH_LIMIT)
        .nullable()
        .optional(),
      importWindow: z
        .strictObject({
          start: z.string().max(16),
          end: z.string().max(16),
          timezone: z.string().max(64),
        })
        .superRefine((window, ctx) => {
          const problem = windowProblem(window);
          if (problem) ctx.addIssue({ code: "custom", message: problem });
        })
        // Stored and shown as the zone's own name, whatever the case it was typed in.
        .transform((window) => ({ ...window, timezone: canonicalTimeZone(window.timezone) }))
        .nullable()
        .optional(),
    })
    .refine((value) => Object.keys(value).length > 0, { message: "name at least one setting to change" }),
  "import:start": empty,
  "import:stop": empty,
  "source:update": z.strictObject({
    url: z.string().min(1).max(2048),
    keyring: z
      .string()
      .max(256 * 1024)
      .optional(),
  }),
  "rack:remove": z.strictObject({ name: personName }),
  // A rack token is named after the one rack it may register as, so its name follows the rack rule.
  "token:create": z.union([
    z.strictObject({ role: z.enum(["admin", "viewer"]), name: personName }),
    z.strictObject({ role: z.literal("rack"), name: rackNameSchema }),
  ]),
  "token:revoke": z.strictObject({ name: personName }),
  "store:verify": z.strictObject({ repair: z.boolean().optional() }),
  "audit:list": z.strictObject({
    limit: z
      .number()
      .int()
      .min(1)
      .max(AUDIT_PAGE_MAX, `at most ${AUDIT_PAGE_MAX} entries a page; ask for older ones with "before"`)
      .optional(),
    before: z
      .string()
      .regex(/^[1-9][0-9]{0,15}$/, `a cursor: the "next" of the page before`)
      .optional(),
  }),
} as const;

export type CommandName = keyof typeof commandSchemas;
export const COMMAND_NAMES = Object.keys(commandSchemas) as CommandName[];
export type CommandPayload<N extends CommandName> = z.infer<(typeof commandSchemas)[N]>;

export type CommandResults = {
  /** `seq`: the last event the snapshot includes, so a client can go on from it. */
  "state:get": { snapshot: Snapshot & { seq: number } };
  "catalogue:get": { catalogue: Catalogue };
  "selection:save": { selection: Selection };
  "settings:update": { settings: Settings };
  "import:start": { import: ImportState };
  "import:stop": { import: ImportState };
  "source:update": { source: SourceState; catalogue: Catalogue };
  "rack:remove": Record<string, never>;
  "token:create": { token: string };
  "token:revoke": Record<string, never>;
  /** The run started, or the one already running (which this one joined). */
  "store:verify": { verify: VerifyState };
  /** `next`: pass it as `before` for the older entries; null when there are none. */
  "audit:list": { entries: AuditEntry[]; next: string | null };
};

/** Commands a viewer may run; every other command needs the admin role. */
export const READ_ONLY_COMMANDS: ReadonlySet<CommandName> = new Set([
  "state:get",
  "catalogue:get",
  "audit:list",
]);

export function isCommandName(value: string): value is CommandName {
  return Object.hasOwn(commandSchemas, value);
}
