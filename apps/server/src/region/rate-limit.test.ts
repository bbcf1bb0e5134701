import { describe, expect, it } from "vitest";
import type { Logger } from "../log";
import { BucketStore, Counter, clientAddress, type Rate } from "./rate-limit";
import { ClientLimits, DEFAULT_CLIENT_LIMITS, rate } from "./client-limits";
import { RefusalLog } from "./refusal-log";

const clock = () => {
  let now = 0;
  return { now: () => now, advance: (ms: number) => (now += ms) };
};

describe("BucketStore", () => {
  const slow: Rate = { perSecond: 1, burst: 2 };
  const fast: Rate = { perSecond: 10, burst: 5 };

  it.each([
    { takes: 2, afterMs: 0, ok: true },
    { takes: 3, afterMs: 0, ok: false },
    { takes: 3, afterMs: 1000, ok: true },
    { takes: 4, afterMs: 500, ok: false },
  ])("a burst of 2 at 1/s: take #$takes after $afterMs ms → $ok", ({ takes, afterMs, ok }) => {
    const time = clock();
    const store = new BucketStore(time.now);
    for (let i = 1; i < takes; i++) store.take([["k", slow]]);
    time.advance(afterMs);
    expect(store.take([["k", slow]]).ok).toBe(ok);
  });

  it("takes from every bucket or from none, and names the one that was empty", () => {
    const store = new BucketStore(clock().now);
    store.take([["a", slow]]);
    store.take([["a", slow]]);
    expect(
      store.take([
        ["b", fast],
        ["a", slow],
      ]),
    ).toEqual({ ok: false, key: "a" });
    // b gave nothing to the refused take: its whole burst is still there.
    for (let i = 0; i < 5; i++) expect(store.take([["b", fast]]).ok).toBe(true);
    expect(store.take([["b", fast]])).toEqual({ ok: false, key: "b" });
  });

  it("never holds more than the burst, however long it was idle", () => {
    const time = clock();
    const store = new BucketStore(time.now);
    store.take([["k", slow]]);
    time.advance(3_600_000);
    expect([1, 2, 3].map(() => store.take([["k", slow]]).ok)).toEqual([true, true, false]);
  });

  it("forgets full buckets when it grows large, keeps the ones still draining", () => {
    const time = clock();
    const store = new BucketStore(time.now);
    store.take([["draining", { perSecond: 0.001, burst: 1 }]]);
    for (let i = 0; i < 10_000; i++) store.take([[`address:${i}`, fast]]);
    time.advance(1000);
    // All 10,000 were draining at the first scan; the next comes at twice as many keys.
    for (let i = 0; i < 10_000; i++) store.take([[`later:${i}`, fast]]);
    expect(store.size).toBeLessThanOrEqual(10_001);
    expect(store.take([["draining", { perSecond: 0.001, burst: 1 }]]).ok).toBe(false);
  });
});

describe("Counter", () => {
  it("caps per key, releases once however often release is called", () => {
    const counter = new Counter(2);
    const a = counter.reserve("t")!;
    const b = counter.reserve("t")!;
    expect(counter.reserve("t")).toBeNull();
    expect(counter.reserve("other")).not.toBeNull();
    a();
    a();
    expect(counter.count("t")).toBe(1);
    expect(counter.reserve("t")).not.toBeNull();
    b();
    expect(counter.count("t")).toBe(1);
  });
});

describe("clientAddress", () => {
  it.each([
    ["::ffff:127.0.0.1", "127.0.0.1"],
    ["127.0.0.1", "127.0.0.1"],
    ["::1", "::1"],
    ["::ffff", "::ffff"],
    [undefined, "unknown"],
  ])("%s → %s", (raw, address) => expect(clientAddress(raw)).toBe(address));
});

function recordingLog() {
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  const log = { info: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) };
  return { lines, log: log as unknown as Logger };
}

describe("ClientLimits", () => {
  const user = { name: "wall", role: "viewer" as const };

  it.each([
    { limits: { connection: rate(1) }, message: "more than 1 commands a second on this connection" },
    { limits: { token: rate(1) }, message: 'more than 1 commands a second with token "wall"' },
    { limits: { address: rate(1) }, message: "more than 1 commands a second from 10.0.0.1" },
  ])("says which limit refused: $message", ({ limits, message }) => {
    const { log } = recordingLog();
    const client = new ClientLimits({ ...DEFAULT_CLIENT_LIMITS, ...limits }, log);
    for (let i = 0; i < 2; i++) expect(client.command("s1", user, "10.0.0.1")).toBeNull();
    expect(client.command("s1", user, "10.0.0.1")).toEqual({
      code: "rate-limited",
      message: expect.stringContaining(message) as string,
    });
    client.close();
  });

  it("shares a token's bucket between its sockets and HTTP", () => {
    const { log } = recordingLog();
    const client = new ClientLimits({ ...DEFAULT_CLIENT_LIMITS, token: rate(2) }, log);
    expect(client.command("s1", user, "10.0.0.1")).toBeNull();
    expect(client.command("s2", user, "10.0.0.2")).toBeNull();
    expect(client.command(null, user, "10.0.0.3")).toBeNull();
    expect(client.command(null, user, "10.0.0.3")).toBeNull();
    expect(client.command("s3", user, "10.0.0.4")?.message).toContain('token "wall"');
    client.close();
  });

  it("caps sockets per token", () => {
    const { log } = recordingLog();
    const client = new ClientLimits({ ...DEFAULT_CLIENT_LIMITS, socketsPerToken: 1 }, log);
    const release = client.reserveSocket(user, "10.0.0.1");
    expect(typeof release).toBe("function");
    expect(client.reserveSocket(user, "10.0.0.1")).toMatchObject({ code: "rate-limited" });
    (release as () => void)();
    expect(typeof client.reserveSocket(user, "10.0.0.1")).toBe("function");
    client.close();
  });
});

describe("RefusalLog", () => {
  it("logs the first refusal of each reason at once and the rest as one line of counts a window", async () => {
    const { lines, log } = recordingLog();
    const refusals = new RefusalLog(log, 50);
    for (let i = 0; i < 1000; i++)
      refusals.refused(i % 2 ? "unauthorized" : "rate-limited", `10.0.0.${i % 7}`, `first ${i % 2}`);
    expect(lines.map((l) => l.msg)).toEqual(["first 0", "first 1"]);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(lines).toHaveLength(4);
    const counts = Object.fromEntries(lines.slice(2).map((l) => [l.fields.reason, l.fields.total]));
    expect(counts).toEqual({ "rate-limited": 499, unauthorized: 499 });
    expect(lines[2]!.fields.addresses).toHaveLength(5);
    expect(lines[2]!.msg).toMatch(/^refused 499 more in 0.05 s/);
    // Quiet again: the next refusal is logged at once.
    await new Promise((resolve) => setTimeout(resolve, 60));
    refusals.refused("unauthorized", "10.0.0.9");
    expect(lines).toHaveLength(5);
    expect(lines[4]!.msg).toBe("refused: unauthorized");
    refusals.close();
  });
});
