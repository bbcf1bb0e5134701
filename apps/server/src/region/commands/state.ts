import type { Handler } from "./types";

export const stateGet: Handler<"state:get"> = async (_payload, actor, region) => ({
  snapshot: { ...region.bus.live.snapshot(actor), seq: region.bus.currentSeq },
});
