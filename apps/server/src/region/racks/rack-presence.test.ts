import { describe, expect, it } from "vitest";
import { RackPresence } from "./rack-presence";

const STALE = 10_000;
const fresh = () => new RackPresence("leader", STALE);

describe("RackPresence (which node each rack is connected through, on the leader)", () => {
  it("a hello puts the rack on its node; a rack that reconnects elsewhere moves there", () => {
    const p = fresh();
    p.hello("r1", "a", 0);
    expect(p.where("r1")).toBe("a");
    p.hello("r1", "b", 1);
    expect(p.where("r1")).toBe("b");
  });

  it.each([
    ["from the node it is on", "a", true, null],
    ["late, from a node it left", "old", false, "a"],
  ])("a bye %s: offline %s", (_, from, offline, after) => {
    const p = fresh();
    p.hello("r1", "old", 0);
    p.hello("r1", "a", 1);
    expect(p.bye("r1", from, 2)).toBe(offline);
    expect(p.where("r1")).toBe(after);
  });

  it("a beat registers racks online nowhere, leaves a rack online elsewhere there, and drops unlisted ones", () => {
    const p = fresh();
    p.hello("here", "a", 0);
    p.hello("lost-bye", "a", 0);
    p.hello("elsewhere", "b", 0);
    const { added, gone } = p.beat("a", ["here", "new", "elsewhere"], 1);
    expect(added).toEqual(["new"]);
    expect(gone).toEqual(["lost-bye"]);
    expect([p.where("here"), p.where("new"), p.where("elsewhere"), p.where("lost-bye")]).toEqual([
      "a",
      "a",
      "b",
      null,
    ]);
  });

  it("a node not heard of within the bound loses its racks; this node's own racks never go stale", () => {
    const p = fresh();
    p.hello("mine", "leader", 0);
    p.hello("on-a", "a", 0);
    p.hello("on-b", "b", 0);
    p.beat("b", ["on-b"], STALE - 1);
    expect(p.stale(STALE - 1)).toEqual([]);
    expect(p.stale(STALE)).toEqual(["on-a"]);
    expect(p.where("on-a")).toBeNull();
    expect(p.stale(2 * STALE)).toEqual(["on-b"]);
    expect(p.where("mine")).toBe("leader");
  });

  it("reset forgets everything (a new term learns its racks afresh)", () => {
    const p = fresh();
    p.hello("r1", "a", 0);
    p.reset();
    expect(p.where("r1")).toBeNull();
    expect(p.beat("a", ["r1"], 1).added).toEqual(["r1"]);
  });
});
