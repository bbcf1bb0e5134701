import type { Handler } from "./types";

export const auditList: Handler<"audit:list"> = async ({ limit }, _actor, region) => ({
  entries: await region.audit.list(limit ?? 100),
});
