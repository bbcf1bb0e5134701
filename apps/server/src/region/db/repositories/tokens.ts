import { IsNull, type EntityManager } from "typeorm";
import { TokenEntity, type TokenRow } from "../entities";
import type { DatabaseKind } from "./index";

export type { TokenRow };

/**
 * The `token` table. Writes are conditional statements, so two region nodes (or two admins) racing
 * on PostgreSQL cannot both take one name, nor both revoke "one of two" admin tokens.
 */
export class TokenRepository {
  constructor(
    private readonly m: EntityManager,
    private readonly kind: DatabaseKind,
  ) {}

  async byHash(hash: string): Promise<TokenRow | null> {
    return this.m.findOne(TokenEntity, { where: { hash } });
  }

  /** Active tokens kept as a KDF hash (configured ones: a handful at most). */
  async kdfHashed(): Promise<TokenRow[]> {
    return this.m
      .createQueryBuilder(TokenEntity, "token")
      .where("token.hash LIKE 'scrypt$%' AND token.revoked_at IS NULL")
      .getMany();
  }

  /** Replaces a token's hash when it still has `from` (a configured token moving to a KDF hash). */
  async rehash(name: string, from: string, to: string): Promise<void> {
    await this.m.update(TokenEntity, { name, hash: from }, { hash: to });
  }

  async byName(name: string): Promise<TokenRow | null> {
    return this.m.findOne(TokenEntity, { where: { name } });
  }

  async count(): Promise<number> {
    return this.m.count(TokenEntity);
  }

  /** Inserts unless the name is taken (by anyone, revoked or not); returns whether it was inserted. */
  async insertIfAbsent(row: TokenRow): Promise<boolean> {
    await this.m.createQueryBuilder().insert().into(TokenEntity).values(row).orIgnore().execute();
    // Whoever holds the name now: ours (the hash is random) or the one that was there first.
    return (await this.byName(row.name))?.hash === row.hash;
  }

  /**
   * A new token under `name`: takes a free name, or reuses a revoked one, never an active one.
   * Returns false when an active token holds the name.
   */
  async create(row: TokenRow): Promise<boolean> {
    const reused = await this.m
      .createQueryBuilder()
      .update(TokenEntity)
      .set(row)
      .where("name = :name AND revoked_at IS NOT NULL", { name: row.name })
      .execute();
    if (reused.affected) return true;
    return this.insertIfAbsent(row);
  }

  /** Deletes the token `name` when it still has `hash` (a first start's, taken back unshown). */
  async removeIf(name: string, hash: string): Promise<void> {
    await this.m.delete(TokenEntity, { name, hash });
  }

  /** Makes or replaces the named token (the demo's fresh admin token on every run). */
  async put(row: TokenRow): Promise<void> {
    await this.m.upsert(TokenEntity, row, ["name"]);
  }

  /**
   * Revokes the active token `name` unless it is the last active admin token. The active admin
   * rows are locked first (PostgreSQL), so two revocations of the last two admins run one after the
   * other and the second sees only one left.
   */
  async revoke(name: string, at: string): Promise<"revoked" | "not-found" | "last-admin"> {
    const admins = this.m
      .createQueryBuilder(TokenEntity, "token")
      .select("token.name")
      .where("token.role = 'admin' AND token.revoked_at IS NULL");
    if (this.kind === "postgres") admins.setLock("pessimistic_write");
    const activeAdmins = (await admins.getMany()).map((row) => row.name);
    const existing = await this.m.findOne(TokenEntity, { where: { name, revokedAt: IsNull() } });
    if (!existing) return "not-found";
    if (existing.role === "admin" && activeAdmins.filter((n) => n !== name).length === 0) return "last-admin";
    const result = await this.m.update(TokenEntity, { name, revokedAt: IsNull() }, { revokedAt: at });
    return result.affected ? "revoked" : "not-found";
  }
}
