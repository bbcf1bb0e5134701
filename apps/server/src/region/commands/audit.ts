import { AUDIT_PAGE_MAX } from "@bootstream/protocol";
import type { Handler } from "./types";

export const auditList: Handler<"audit:list"> = async ({ limit, before }, _actor, region) =>
  region.audit.list(limit ?? AUDIT_PAGE_MAX, before);
