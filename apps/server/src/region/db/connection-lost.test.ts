import { DownloadError, SourceError } from "@bootstream/images";
import { describe, expect, it } from "vitest";
import { databaseConnectionLost } from "./connection-lost";

const coded = (code: string, message = "boom") => Object.assign(new Error(message), { code });

describe("databaseConnectionLost", () => {
  it.each<[string, unknown, boolean]>([
    [
      "PostgreSQL admin shutdown 57P01",
      coded("57P01", "terminating connection due to administrator command"),
      true,
    ],
    ["PostgreSQL crash shutdown 57P02", coded("57P02"), true],
    ["PostgreSQL starting up 57P03", coded("57P03", "the database system is starting up"), true],
    ["PostgreSQL connection failure 08006", coded("08006"), true],
    ["PostgreSQL too many connections 53300", coded("53300"), true],
    ["wrapped by TypeORM", { message: "x", driverError: coded("57P01") }, true],
    ["connection refused", coded("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:5432"), true],
    ["connection reset", coded("ECONNRESET", "read ECONNRESET"), true],
    ["server went away mid-query", new Error("Connection terminated unexpectedly"), true],
    [
      "pool connect timeout, with its cause",
      new Error("Connection terminated due to connection timeout", { cause: new Error("x") }),
      true,
    ],
    ["pool wait timeout", new Error("timeout exceeded when trying to connect"), true],
    ["client query_timeout", new Error("Query read timeout"), true],
    [
      "a cause two deep",
      new Error("outer", { cause: new Error("mid", { cause: coded("ECONNREFUSED") }) }),
      true,
    ],
    ["PostgreSQL disk full 53100 is a refusal, not a loss", coded("53100"), false],
    ["PostgreSQL unique violation 23505", coded("23505"), false],
    ["PostgreSQL serialization failure 40001", coded("40001"), false],
    ["SQLITE_FULL", coded("SQLITE_FULL", "database or disk is full"), false],
    ["ENOSPC in the store", coded("ENOSPC"), false],
    [
      "an upstream that refuses is the source's error",
      new SourceError("GET http://mirror/streams/v1/index.json: connect ECONNREFUSED", {
        cause: coded("ECONNREFUSED"),
      }),
      false,
    ],
    [
      "a download that fails is the download's error",
      new DownloadError("network", "GET http://mirror/x: connection refused (ECONNREFUSED)", {
        url: "http://mirror/x",
        retryable: true,
        cause: coded("ECONNREFUSED"),
      }),
      false,
    ],
    ["a plain error", new Error("bug"), false],
    ["not an error", "Connection terminated", false],
    ["null", null, false],
  ])("%s", (_name, error, expected) => {
    expect(databaseConnectionLost(error)).toBe(expected);
  });

  it("stops at a cycle of causes", () => {
    const a = new Error("a") as Error & { cause?: unknown };
    const b = new Error("b", { cause: a });
    a.cause = b;
    expect(databaseConnectionLost(a)).toBe(false);
  });
});
