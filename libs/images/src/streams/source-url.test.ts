import { describe, expect, it } from "vitest";
import { SourceError } from "./source-error";
import { displayUrl, resolveItemUrl, sourceBaseUrl } from "./source-url";

const BASE = "http://images.example/ephemeral-v3/stable/";

describe("sourceBaseUrl", () => {
  it("adds the trailing slash and strips an index path, query and fragment", () => {
    expect(sourceBaseUrl("http://images.example/ephemeral-v3/stable").href).toBe(BASE);
    expect(sourceBaseUrl(`${BASE}streams/v1/index.sjson?x=1#y`).href).toBe(BASE);
    expect(sourceBaseUrl("file:///srv/mirror").href).toBe("file:///srv/mirror/");
  });

  it("refuses what is not an http(s) or file URL", () => {
    expect(() => sourceBaseUrl("images.example/stable")).toThrow(SourceError);
    expect(() => sourceBaseUrl("ftp://images.example/")).toThrow(/only http/);
  });
});

describe("resolveItemUrl", () => {
  it("resolves plain relative paths below the source, colons in file names included", () => {
    expect(resolveItemUrl(BASE, "noble/amd64/20250618/squashfs")).toBe(
      `${BASE}noble/amd64/20250618/squashfs`,
    );
    expect(resolveItemUrl(BASE, "streams/v1/com.ubuntu.maas:stable:v3:download.json")).toBe(
      `${BASE}streams/v1/com.ubuntu.maas:stable:v3:download.json`,
    );
    expect(resolveItemUrl("file:///srv/m", "a/b")).toBe("file:///srv/m/a/b");
  });

  it.each([
    ["../secret", "'..'"],
    ["noble/../../../etc/passwd", "'..'"],
    ["./squashfs", "'.'"],
    ["/etc/passwd", "absolute"],
    ["//evil.example/x", "absolute"],
    ["http://evil.example/x", "scheme"],
    ["javascript:alert(1)", "scheme"],
    ["C:/Windows/x", "scheme"],
    ["noble\\..\\..\\x", "backslash"],
    ["noble/%2e%2e/%2e%2e/x", "'..'"],
    ["noble/%2E%2E/x", "'..'"],
    ["noble/..%2fx", "encoded separator"],
    ["noble/%252e%252e/x", "encoded separator"],
    ["noble/%zz", "percent-encoding"],
    ["noble//squashfs", "empty segment"],
    ["noble/squashfs?x=../..", "query"],
    ["noble/\u0000x", "control"],
    ["", "empty"],
  ])("refuses %j (%s)", (path, reason) => {
    let caught: unknown;
    try {
      resolveItemUrl(BASE, path);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SourceError);
    expect((caught as SourceError).code).toBe("source-error");
    expect((caught as SourceError).message).toContain("escapes the source");
    expect((caught as SourceError).message).toContain(reason);
  });
});

describe("displayUrl", () => {
  it("hides credentials and shows file URLs as paths", () => {
    expect(displayUrl("https://user:pw@images.example/x")).toBe("https://images.example/x");
    expect(displayUrl("file:///srv/a%20b/x.json")).toBe("/srv/a b/x.json");
  });
});
