import { describe, expect, it } from "vitest";
import { ConfigError, loadRegionConfig, parseAdvertiseUrl, parseDuration, parseMinRate } from "./config";

describe("parseMinRate (DOWNLOAD_MIN_RATE)", () => {
  it.each([
    ["1KiB", 1024, 60_000],
    ["1KiB/60s", 1024, 60_000],
    ["512B/s", 512, 60_000],
    ["10KB/30s", 10_000, 30_000],
    ["2MiB/s/5s", 2 * 1024 * 1024, 5_000],
    ["100", 100, 60_000],
    // The cap's units: b is a bit.
    ["8kbit/s", 1000, 60_000],
    ["80kb/10s", 10_000, 10_000],
    ["off", 0, 60_000],
    ["0", 0, 60_000],
  ])("%s → %d B/s over %d ms", (text, bytesPerSecond, windowMs) => {
    expect(parseMinRate(text)).toEqual({ bytesPerSecond, windowMs });
  });

  it.each(["", "fast", "-1KiB", "1TB", "1KiB/0s", "1KiB/4000s", "0.4B", "off/30s", "1KiB/s/"])(
    "refuses %j",
    (text) => {
      expect(() => parseMinRate(text)).toThrow(ConfigError);
    },
  );

  it("defaults to 1 KiB/s over 60 s, and the flag wins over the environment", () => {
    expect(loadRegionConfig([], {}).downloadMinRate).toEqual({ bytesPerSecond: 1024, windowMs: 60_000 });
    expect(
      loadRegionConfig(["--download-min-rate", "4KiB/10s"], { DOWNLOAD_MIN_RATE: "off" }).downloadMinRate,
    ).toEqual({ bytesPerSecond: 4096, windowMs: 10_000 });
  });
});

describe("parseDuration (LEADER_LEASE)", () => {
  it.each([
    ["15s", 15_000],
    ["15", 15_000],
    ["1500ms", 1500],
    ["2m", 120_000],
  ])("%s → %d ms", (text, ms) => {
    expect(parseDuration("LEADER_LEASE", text, 1000, 600_000)).toBe(ms);
  });

  it.each(["", "fast", "-3s", "1.5s", "999ms", "11m", "15 h"])("refuses %j", (text) => {
    expect(() => parseDuration("LEADER_LEASE", text, 1000, 600_000)).toThrow(ConfigError);
  });

  it("defaults to 15 s, and the flag wins over the environment", () => {
    expect(loadRegionConfig([], {}).leaderLeaseMs).toBe(15_000);
    expect(loadRegionConfig(["--leader-lease", "3s"], { LEADER_LEASE: "30s" }).leaderLeaseMs).toBe(3000);
  });
});

describe("configured secrets (ADMIN_TOKEN, RACK_SECRET)", () => {
  const long = "x".repeat(32);
  it.each([
    ["ADMIN_TOKEN", "a", /invalid ADMIN_TOKEN: is 1 characters; use at least 32/],
    ["ADMIN_TOKEN", "x".repeat(31), /invalid ADMIN_TOKEN: is 31 characters; use at least 32/],
    ["RACK_SECRET", "test-rack-secret", /invalid RACK_SECRET: is 16 characters; use at least 32/],
    ["RACK_SECRET", `${long} x`, /invalid RACK_SECRET: must be at most 256 characters with no white space/],
    ["ADMIN_TOKEN", "y".repeat(257), /invalid ADMIN_TOKEN: must be at most 256/],
  ])("refuses %s=%j with a clear error", (name, value, message) => {
    expect(() => loadRegionConfig([], { [name]: value })).toThrow(message);
  });

  it("accepts 32 characters or more, and leaves an unset secret to be generated", () => {
    const config = loadRegionConfig([], { ADMIN_TOKEN: long, RACK_SECRET: `${long}-rack` });
    expect([config.adminToken, config.rackSecret]).toEqual([long, `${long}-rack`]);
    expect(loadRegionConfig([], {})).toMatchObject({ adminToken: null, rackSecret: null });
    // The flag is checked the same way.
    expect(() => loadRegionConfig(["--admin-token", "short"], {})).toThrow(/invalid ADMIN_TOKEN/);
  });
});

describe("parseAdvertiseUrl (ADVERTISE_URL)", () => {
  it.each([
    ["http://10.0.0.11:5240", "http://10.0.0.11:5240"],
    ["http://10.0.0.11:5240/", "http://10.0.0.11:5240"],
    ["https://region-1.example/bootstream/", "https://region-1.example/bootstream"],
  ])("%s → %s", (text, url) => {
    expect(parseAdvertiseUrl(text)).toBe(url);
  });

  it.each(["region-1:5240", "ftp://10.0.0.11/", "http://u:p@10.0.0.11/", "http://10.0.0.11/?x=1", "nope"])(
    "refuses %j",
    (text) => {
      expect(() => parseAdvertiseUrl(text)).toThrow(ConfigError);
    },
  );

  it("is unset by default (the listening URL), and the flag wins over the environment", () => {
    expect(loadRegionConfig([], {}).advertiseUrl).toBeNull();
    expect(
      loadRegionConfig(["--advertise-url", "http://a:1"], { ADVERTISE_URL: "http://b:2" }).advertiseUrl,
    ).toBe("http://a:1");
  });
});
