import { describe, expect, it } from "vitest";
import { redirectRefusal } from "./redirect";

const from = new URL("http://images.example.com/stable/streams/v1/index.json");

describe("redirectRefusal", () => {
  it.each([
    ["/other/path", null],
    ["http://images.example.com/x", null],
    ["https://images.example.com/x", null],
    ["http://images.example.com:80/x", null],
    ["https://images.example.com:8443/x", "to another origin (https://images.example.com:8443)"],
    ["http://127.0.0.1:5240/metrics", "to another origin (http://127.0.0.1:5240)"],
    ["http://169.254.169.254/latest/meta-data/", "to another origin (http://169.254.169.254)"],
    ["http://[::1]/x", "to another origin (http://[::1])"],
    ["http://cdn.example.net/x", "to another origin (http://cdn.example.net)"],
    ["http://user:pass@images.example.com/x", "to a URL with credentials"],
    ["file:///etc/passwd", "to a file: URL"],
  ])("%s → %s", (location, refusal) => {
    expect(redirectRefusal(from, URL.parse(location, from))).toBe(refusal);
  });

  it("refuses an unreadable Location", () => {
    expect(redirectRefusal(from, URL.parse("http://[bad", from))).toBe("to an unreadable Location");
  });

  it("allows no downgrade and no upgrade from a non-default port", () => {
    expect(redirectRefusal(new URL("https://a.example/"), new URL("http://a.example/x"))).toMatch(
      /another origin/,
    );
    expect(redirectRefusal(new URL("http://a.example:8080/"), new URL("https://a.example/x"))).toMatch(
      /another origin/,
    );
  });
});
