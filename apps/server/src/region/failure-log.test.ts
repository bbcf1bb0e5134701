import { describe, expect, it } from "vitest";
import type { Logger } from "../log";
import { FailureLog } from "./failure-log";

function recordingLog() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, msg: string): void =>
      void lines.push({ level, fields, msg });
  const log = { error: at("error"), info: at("info") };
  return { lines, log: log as unknown as Logger };
}

describe("FailureLog", () => {
  it("logs the first failure at once, the rest as one line of counts a window, and the recovery", async () => {
    const { lines, log } = recordingLog();
    const failures = new FailureLog(log, "rack report", "rack", 50);
    for (let i = 0; i < 300; i++) failures.failed(`rack-${i % 7}`, new Error(`down ${i}`));
    expect(lines.map((l) => l.msg)).toEqual(["rack report failed"]);
    expect(lines[0]).toMatchObject({ level: "error", fields: { rack: "rack-0" } });
    // A window later: one line for the 299 others, naming five racks and the last error.
    await expect.poll(() => lines.length, { timeout: 5_000 }).toBe(2);
    expect(lines[1]!.msg).toMatch(/^rack report failed 299 more time\(s\) in 0\.\d s$/);
    expect(lines[1]!.fields).toMatchObject({ total: 299, err: "down 299" });
    expect(lines[1]!.fields.racks).toHaveLength(5);
    // Still failing in the next window: counted again. A quiet window writes nothing.
    failures.failed("rack-1", new Error("down again"));
    await expect.poll(() => lines.length, { timeout: 5_000 }).toBe(3);
    expect(lines[2]!.fields).toMatchObject({ total: 1, racks: ["rack-1"] });
    // Every rack that failed must succeed before the outage ends; one gone away is forgotten.
    for (let i = 0; i < 6; i++) failures.succeeded(`rack-${i}`);
    expect(lines).toHaveLength(3);
    failures.succeeded("rack-unknown");
    expect(lines).toHaveLength(3);
    failures.forget("rack-6");
    expect(lines).toHaveLength(3);
    // Forgotten, not recovered: no recovery line; the next failure is a new outage's first.
    failures.failed("rack-2", new Error("again"));
    expect(lines.at(-1)).toMatchObject({ msg: "rack report failed", fields: { rack: "rack-2" } });
    failures.succeeded("rack-2");
    expect(lines.at(-1)).toMatchObject({
      level: "info",
      msg: expect.stringMatching(/^rack report recovered after 1 failure\(s\) in \d+ s$/),
      fields: { failures: 1 },
    });
    failures.close();
  });

  it("the recovery flushes the window's counts first", () => {
    const { lines, log } = recordingLog();
    const failures = new FailureLog(log, "rack report", "rack", 60_000);
    failures.failed("a", new Error("x"));
    failures.failed("b", new Error("y"));
    failures.succeeded("a");
    failures.succeeded("b");
    expect(lines.map((l) => l.msg)).toEqual([
      "rack report failed",
      expect.stringMatching(/^rack report failed 1 more time\(s\) in [\d.]+ s$/),
      expect.stringMatching(/^rack report recovered after 2 failure\(s\)/),
    ]);
    failures.close();
  });
});
