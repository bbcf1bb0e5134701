import { createHash, randomBytes } from "node:crypto";
import { CommandError, type PresenceUser, type TokenRole } from "@bootstream/protocol";
import { IsNull, type EntityManager } from "typeorm";
import type { Database } from "../db/database";
import { TokenEntity, type TokenRow } from "../db/entities";
import { now } from "../clock";

// Tokens are 32 random bytes, so a fast unsalted hash is enough: there is nothing to brute-force.
export const hashToken = (token: string): string => createHash("sha256").update(token).digest("hex");
export const generateSecret = (): string => randomBytes(32).toString("base64url");

export class TokenService {
  constructor(private readonly db: Database) {}

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
    const row = await this.db.manager.findOne(TokenEntity, { where: { name, role: "rack" } });
    return row !== null && !row.revokedAt;
  }

  private async find(token: unknown): Promise<TokenRow | null> {
    if (typeof token !== "string" || token.length === 0 || token.length > 512) return null;
    const row = await this.db.manager.findOne(TokenEntity, { where: { hash: hashToken(token) } });
    return row && !row.revokedAt ? row : null;
  }

  /** On a fresh database, makes the first admin token. Returns the token when it was generated here. */
  async bootstrap(adminToken: string | null): Promise<{ generated: string | null; created: boolean }> {
    return this.db.write(async (m) => {
      if ((await m.count(TokenEntity)) > 0) return { generated: null, created: false };
      const token = adminToken ?? generateSecret();
      const hash = hashToken(token);
      // Another node may be bootstrapping the same database this very moment: its insert may win.
      await m
        .createQueryBuilder()
        .insert()
        .into(TokenEntity)
        .values({ name: "admin", role: "admin", hash, createdAt: now(), revokedAt: null })
        .orIgnore()
        .execute();
      const stored = await m.findOne(TokenEntity, { where: { name: "admin" } });
      const ours = stored?.hash === hash;
      return { generated: ours && !adminToken ? token : null, created: ours };
    });
  }

  /** `alsoInTransaction` records the change (the audit row) in the same transaction. */
  async create<T>(
    role: TokenRole,
    name: string,
    alsoInTransaction: (m: EntityManager) => Promise<T>,
  ): Promise<{ token: string; also: T }> {
    const token = generateSecret();
    const also = await this.db.write(async (m) => {
      const existing = await m.findOne(TokenEntity, { where: { name } });
      if (existing && !existing.revokedAt) {
        throw new CommandError(
          "conflict",
          `a token named "${name}" already exists; revoke it first or pick another name`,
        );
      }
      const row = { name, role, hash: hashToken(token), createdAt: now(), revokedAt: null };
      if (existing) await m.update(TokenEntity, { name }, row);
      else await m.insert(TokenEntity, row);
      return alsoInTransaction(m);
    });
    return { token, also };
  }

  /** Makes (or replaces) the named token and returns it: the demo's fresh admin token on every run. */
  async issue(role: TokenRole, name: string): Promise<string> {
    const token = generateSecret();
    await this.db.write((m) =>
      m.save(TokenEntity, { name, role, hash: hashToken(token), createdAt: now(), revokedAt: null }),
    );
    return token;
  }

  async revoke<T>(name: string, alsoInTransaction: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.db.write(async (m) => {
      const existing = await m.findOne(TokenEntity, { where: { name } });
      if (!existing || existing.revokedAt)
        throw new CommandError("not-found", `no active token named "${name}"`);
      const activeAdmins = await m.count(TokenEntity, { where: { role: "admin", revokedAt: IsNull() } });
      if (existing.role === "admin" && activeAdmins <= 1) {
        throw new CommandError(
          "conflict",
          `"${name}" is the last admin token; create another admin token first`,
        );
      }
      await m.update(TokenEntity, { name }, { revokedAt: now() });
      return alsoInTransaction(m);
    });
  }
}
