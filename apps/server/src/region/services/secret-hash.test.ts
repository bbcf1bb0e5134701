import { describe, expect, it } from "vitest";
import { KDF_RATE, SecretHasher, generateSecret, hashToken, isKdfHash } from "./secret-hash";

const CONFIGURED = "correct-horse-battery-staple-1234567890";

describe("secret hashes", () => {
  it("keeps a configured secret as salted scrypt that fits the 64-character column", async () => {
    const hasher = new SecretHasher();
    const a = await hasher.hash(CONFIGURED);
    const b = await hasher.hash(CONFIGURED);
    for (const hash of [a, b]) {
      expect(hash).toMatch(/^scrypt\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{32}$/);
      expect(hash.length).toBeLessThanOrEqual(64);
      expect(isKdfHash(hash)).toBe(true);
      expect(hash).not.toContain(hashToken(CONFIGURED));
    }
    // Salted: the same secret hashes differently each time.
    expect(a).not.toBe(b);
  });

  it.each([
    ["the configured secret, a fresh process", CONFIGURED, true],
    ["another secret", `${CONFIGURED}x`, false],
    ["the empty string", "", false],
  ])("checks a KDF hash against %s", async (_what, presented, expected) => {
    const stored = await new SecretHasher().hash(CONFIGURED);
    await expect(new SecretHasher().matches(presented, stored)).resolves.toBe(expected);
  });

  it.each([
    ["no salt", "scrypt$$abc"],
    ["an extra field", "scrypt$a$b$c"],
    ["no key", "scrypt$abc"],
  ])("refuses a malformed KDF hash (%s)", async (_what, stored) => {
    await expect(new SecretHasher().matches(CONFIGURED, stored)).resolves.toBe(false);
  });

  it("generates 43-character base64url tokens that never start with a dash (it would read as a flag)", () => {
    // Before the redraw one token in 64 started with "-": 4096 draws all pass with p ≈ 1e-28.
    const tokens = Array.from({ length: 4096 }, generateSecret);
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{42}$/);
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it("compares a generated token's SHA-256 without the KDF", async () => {
    const hasher = new SecretHasher();
    const token = generateSecret();
    await expect(hasher.matches(token, hashToken(token))).resolves.toBe(true);
    await expect(hasher.matches(`${token}x`, hashToken(token))).resolves.toBe(false);
    expect(hasher.kdfRuns).toBe(0);
  });

  it("runs the KDF once per process for a secret it verified, then remembers it", async () => {
    const stored = await new SecretHasher().hash(CONFIGURED);
    const hasher = new SecretHasher();
    for (let i = 0; i < 50; i++) await expect(hasher.matches(CONFIGURED, stored)).resolves.toBe(true);
    expect(hasher.kdfRuns).toBe(1);
  });

  it("bounds KDF runs for secrets not seen before; what it verified before still passes", async () => {
    let now = 0;
    const hasher = new SecretHasher(() => now);
    const stored = await new SecretHasher().hash(CONFIGURED);
    await expect(hasher.matches(CONFIGURED, stored)).resolves.toBe(true);
    // A flood of wrong secrets: the burst is spent, then every one is refused without a KDF run.
    const flood = await Promise.all(
      Array.from({ length: 100 }, (_, i) => hasher.matches(`wrong-${i}-${CONFIGURED}`, stored)),
    );
    expect(flood.every((ok) => !ok)).toBe(true);
    expect(hasher.kdfRuns).toBe(KDF_RATE.burst);
    // The secret verified before costs nothing and still passes, flood or not.
    await expect(hasher.matches(CONFIGURED, stored)).resolves.toBe(true);
    // Another right secret is refused while the budget is empty, and checked once it refills.
    const other = await new SecretHasher().hash(`other-${CONFIGURED}`);
    await expect(hasher.matches(`other-${CONFIGURED}`, other)).resolves.toBe(false);
    now += 1000 / KDF_RATE.perSecond;
    await expect(hasher.matches(`other-${CONFIGURED}`, other)).resolves.toBe(true);
    expect(hasher.kdfRuns).toBe(KDF_RATE.burst + 1);
  });
});
