import {
  createHash,
  randomBytes,
  scrypt as scryptCallback,
  timingSafeEqual,
  type ScryptOptions,
} from "node:crypto";
import { BucketStore, type Rate } from "../rate-limit";

/**
 * How secrets are kept in the database. Generated tokens and secrets are 32 random bytes (256
 * bits): an unsalted SHA-256 is enough, there is nothing to brute-force, and a request costs one
 * fast hash and one indexed lookup. Configured ones (`ADMIN_TOKEN`, `RACK_SECRET`) are only as
 * random as whoever chose them, so they are kept as salted scrypt (`scrypt$SALT$KEY`, 62
 * characters: it fits the 64-character hash column). A process checks a configured secret with
 * the KDF once: it then remembers the secret's SHA-256 in memory (never stored), so later requests
 * cost a hash and a map lookup. KDF work for secrets not seen before draws on one bucket per
 * process (`KDF_RATE`): a flood of wrong tokens cannot turn into a flood of scrypt runs.
 */

/** N = 2^14, r = 8: 16 MiB and some tens of milliseconds a run; the salt and the key as stored. */
export const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024, saltBytes: 16, keyBytes: 24 };
const PREFIX = "scrypt$";
/** KDF runs a process may spend on secrets it has not verified before: bursts of 10, then 5 a second. */
export const KDF_RATE: Rate = { perSecond: 5, burst: 10 };

export const hashToken = (token: string): string => createHash("sha256").update(token).digest("hex");
/**
 * 32 random bytes as base64url (43 characters), never starting with "-": a token is passed as
 * `--token VALUE`, and node's parseArgs refuses a value that starts with a dash as an ambiguous
 * flag, so one generated token in 64 could not be used that way. Redrawing costs a sixth of a bit.
 */
export function generateSecret(): string {
  for (;;) {
    const secret = randomBytes(32).toString("base64url");
    if (!secret.startsWith("-")) return secret;
  }
}

export const isKdfHash = (stored: string): boolean => stored.startsWith(PREFIX);

function scrypt(secret: string, salt: Buffer, options: ScryptOptions = SCRYPT): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(secret, salt, SCRYPT.keyBytes, options, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/**
 * Hashes and checks secrets, with this process's memory of the configured secrets it has verified
 * (SHA-256 of the secret → the KDF hash it matched) and its KDF budget. The region uses the one
 * instance below; tests make their own with a clock of their own.
 */
export class SecretHasher {
  private readonly verified = new Map<string, string>();
  private readonly budget: BucketStore;
  /** KDF runs so far (hashing and checking): what the budget bounds. */
  kdfRuns = 0;

  constructor(
    now: () => number = () => performance.now(),
    private readonly rate: Rate = KDF_RATE,
  ) {
    this.budget = new BucketStore(now);
  }

  /** A fresh salted scrypt hash of a configured secret (remembered as verified). */
  async hash(secret: string): Promise<string> {
    const salt = randomBytes(SCRYPT.saltBytes);
    this.kdfRuns++;
    const key = await scrypt(secret, salt);
    const hash = `${PREFIX}${salt.toString("base64url")}$${key.toString("base64url")}`;
    this.verified.set(hashToken(secret), hash);
    return hash;
  }

  /**
   * Whether `secret` is the one `stored` was made from. A SHA-256 hash is compared at once; a KDF
   * hash is looked up in the memory of secrets verified, and only then run, if the budget allows
   * (else: false, as for a wrong secret).
   */
  async matches(secret: string, stored: string): Promise<boolean> {
    const digest = hashToken(secret);
    if (!isKdfHash(stored)) return equal(digest, stored);
    if (this.verified.get(digest) === stored) return true;
    const [salt, key, extra] = stored.slice(PREFIX.length).split("$");
    if (!salt || !key || extra !== undefined) return false;
    if (!this.budget.take([["kdf", this.rate]]).ok) return false;
    this.kdfRuns++;
    const computed = await scrypt(secret, Buffer.from(salt, "base64url"));
    const expected = Buffer.from(key, "base64url");
    if (computed.length !== expected.length || !timingSafeEqual(computed, expected)) return false;
    this.verified.set(digest, stored);
    return true;
  }
}

/** The region's: one per process. */
export const secrets = new SecretHasher();
export const hashConfiguredSecret = (secret: string): Promise<string> => secrets.hash(secret);
export const secretMatches = (secret: string, stored: string): Promise<boolean> =>
  secrets.matches(secret, stored);

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
