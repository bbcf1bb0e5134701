import { CommandError, type AuditEntry, type PresenceUser, type TokenRole } from "@bootstream/protocol";
import type { Database } from "../db/database";
import type { TokenRow } from "../db/entities";
import { Repositories, type AuditNote } from "../db/repositories";
import { now } from "../clock";

import { generateSecret, hashConfiguredSecret, hashToken, secretMatches } from "./secret-hash";

// Generated tokens keep a fast unsalted hash, configured ones a salted KDF: see secret-hash.ts.
export { generateSecret, hashToken };

export class TokenService {
  private readonly data: Repositories;

  constructor(db: Database) {
    this.data = new Repositories(db);
  }

  /** A person's token (admin or viewer). A rack token is no way in for people: it answers null. */
  async authenticate(token: unknown): Promise<PresenceUser | null> {
    const row = await this.find(token);
    if (!row || row.role === "rack") return null;
    return { name: row.name, role: row.role };
  }

  /** The rack a `rack` token belongs to, or null for anything else (unknown, revoked, a person's). */
  async authenticateRack(token: unknown): Promise<string | null> {
    const row = await this.find(token);
    return row?.role === "rack" ? row.name : null;
  }

  /** Whether a rack has a token of its own: then the site-wide secret may not register it. */
  async rackHasToken(name: string): Promise<boolean> {
    const row = await this.data.read.tokens.byName(name);
    return row !== null && row.role === "rack" && !row.revokedAt;
  }

  private async find(token: unknown): Promise<TokenRow | null> {
    if (typeof token !== "string" || token.length === 0 || token.length > 512) return null;
    const row = await this.data.read.tokens.byHash(hashToken(token));
    if (row) return row.revokedAt ? null : row;
    // Not a generated token: perhaps a configured one (ADMIN_TOKEN), kept as a KDF hash.
    for (const candidate of await this.data.read.tokens.kdfHashed())
      if (await secretMatches(token, candidate.hash)) return candidate;
    return null;
  }

  /**
   * On every start with ADMIN_TOKEN set: the configured token is checked with the KDF now, once,
   * so its requests cost a hash; a token stored by an older version as plain SHA-256 is rehashed.
   */
  async rememberConfigured(adminToken: string | null): Promise<"none" | "known" | "unknown"> {
    if (adminToken === null) return "none";
    const legacy = await this.data.read.tokens.byHash(hashToken(adminToken));
    if (legacy) {
      const hash = await hashConfiguredSecret(adminToken);
      await this.data.write((tx) => tx.tokens.rehash(legacy.name, legacy.hash, hash));
      return "known";
    }
    for (const candidate of await this.data.read.tokens.kdfHashed())
      if (await secretMatches(adminToken, candidate.hash)) return "known";
    // Set after the first start (or changed since): it made no token, and none accepts it.
    return "unknown";
  }

  /** On a fresh database, makes the first admin token. Returns the token when it was generated here. */
  async bootstrap(adminToken: string | null): Promise<{ generated: string | null; created: boolean }> {
    // The KDF runs before the transaction, not inside it (the write queue is one for the region).
    const configured =
      adminToken !== null && (await this.data.read.tokens.count()) === 0
        ? await hashConfiguredSecret(adminToken)
        : null;
    return this.data.write(async (tx) => {
      if ((await tx.tokens.count()) > 0) return { generated: null, created: false };
      const token = adminToken ?? generateSecret();
      // Another node may be bootstrapping the same database this very moment: its insert may win.
      const ours = await tx.tokens.insertIfAbsent({
        name: "admin",
        role: "admin",
        hash:
          adminToken === null ? hashToken(token) : (configured ?? (await hashConfiguredSecret(adminToken))),
        createdAt: now(),
        revokedAt: null,
      });
      return { generated: ours && !adminToken ? token : null, created: ours };
    });
  }

  /**
   * Takes back the first admin token `bootstrap` generated, for a first start that failed before it
   * showed it: the next start generates and shows a new one (nobody can have used this one).
   */
  async forgetBootstrap(token: string): Promise<void> {
    await this.data.write((tx) => tx.tokens.removeIf("admin", hashToken(token)));
  }

  /** A new token and its audit row, in one transaction. */
  async create(
    role: TokenRole,
    name: string,
    note: AuditNote,
  ): Promise<{ token: string; entry: AuditEntry }> {
    const token = generateSecret();
    const entry = await this.data.write(async (tx) => {
      const created = await tx.tokens.create({
        name,
        role,
        hash: hashToken(token),
        createdAt: now(),
        revokedAt: null,
      });
      if (!created)
        throw new CommandError(
          "conflict",
          `a token named "${name}" already exists; revoke it first or pick another name`,
        );
      return tx.audit.record(note);
    });
    return { token, entry };
  }

  /** Makes (or replaces) the named token and returns it: the demo's fresh admin token on every run. */
  async issue(role: TokenRole, name: string): Promise<string> {
    const token = generateSecret();
    await this.data.write((tx) =>
      tx.tokens.put({ name, role, hash: hashToken(token), createdAt: now(), revokedAt: null }),
    );
    return token;
  }

  /** Revokes the token and records it, in one transaction. */
  async revoke(name: string, note: AuditNote): Promise<AuditEntry> {
    return this.data.write(async (tx) => {
      const outcome = await tx.tokens.revoke(name, now());
      if (outcome === "not-found") throw new CommandError("not-found", `no active token named "${name}"`);
      if (outcome === "last-admin")
        throw new CommandError(
          "conflict",
          `"${name}" is the last admin token; create another admin token first`,
        );
      return tx.audit.record(note);
    });
  }
}
