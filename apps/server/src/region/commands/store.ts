import type { Handler } from "./types";

// Admin only (not in READ_ONLY_COMMANDS); the verifier records the audit note before the run starts.
export const storeVerify: Handler<"store:verify"> = async ({ repair }, actor, region) => ({
  verify: await region.verifier.start(repair ?? false, actor.name),
});
