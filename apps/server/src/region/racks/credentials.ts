import type { TokenService } from "../services/tokens";
import { secretMatches } from "../services/secret-hash";

/** What a rack presented: its own `rack` token (bound to one name), or the site-wide RACK_SECRET. */
export type RackCredential = { kind: "token"; rack: string } | { kind: "secret" };

/** Checks what rack agents present on `/rack` and `/files`. */
export class RackCredentials {
  constructor(
    private readonly tokens: TokenService,
    private readonly secretHash: string | null,
  ) {}

  async check(value: unknown): Promise<RackCredential | null> {
    if (typeof value !== "string" || value.length === 0 || value.length > 512) return null;
    // A configured RACK_SECRET is a KDF hash: verified at start, then one hash per check (secret-hash.ts).
    if (this.secretHash !== null && (await secretMatches(value, this.secretHash))) return { kind: "secret" };
    const rack = await this.tokens.authenticateRack(value);
    return rack === null ? null : { kind: "token", rack };
  }

  /**
   * Why `credential` may not register the rack `name`, or null when it may: a rack token registers
   * only its own rack, and the shared secret no longer registers a rack that has a token of its own.
   */
  async refusal(credential: RackCredential, name: string): Promise<string | null> {
    if (credential.kind === "token")
      return credential.rack === name ? null : `the rack token of "${credential.rack}" claims "${name}"`;
    return (await this.tokens.rackHasToken(name))
      ? `"${name}" has a rack token of its own; the site-wide rack secret may not register it`
      : null;
  }
}
