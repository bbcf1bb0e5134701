import type { Logger } from "../log";

/** How many addresses a summary line names. */
const ADDRESSES_SHOWN = 5;

type Spell = { timer: NodeJS.Timeout; count: number; addresses: Set<string> };

/**
 * Refused connections and requests, logged without letting a flood write a line each. Per reason
 * (a fixed, small set): the first refusal after a quiet spell is logged at once, so a misconfigured
 * client is seen right away; the rest as one line of counts every `everyMs` while they go on. At
 * most one line per reason per `everyMs`, plus one.
 */
export class RefusalLog {
  private readonly spells = new Map<string, Spell>();

  constructor(
    private readonly log: Logger,
    readonly everyMs: number,
  ) {}

  /** `msg` (and `fields`) make the line logged when this is the first refusal of a spell. */
  refused(
    reason: string,
    address: string,
    msg = `refused: ${reason}`,
    fields: Record<string, unknown> = {},
  ): void {
    const spell = this.spells.get(reason);
    if (!spell) {
      this.log.info({ reason, address, ...fields }, msg);
      this.spells.set(reason, this.spell(reason));
      return;
    }
    spell.count++;
    if (spell.addresses.size < ADDRESSES_SHOWN) spell.addresses.add(address);
  }

  private spell(reason: string): Spell {
    const timer = setTimeout(() => this.flush(reason), this.everyMs);
    timer.unref();
    return { timer, count: 0, addresses: new Set() };
  }

  private flush(reason: string): void {
    const spell = this.spells.get(reason);
    this.spells.delete(reason);
    if (!spell || spell.count === 0) return;
    this.log.info(
      { reason, total: spell.count, addresses: [...spell.addresses], seconds: this.everyMs / 1000 },
      `refused ${spell.count} more in ${this.everyMs / 1000} s (${reason})`,
    );
    // Still going on: the next line comes a window later, not at the next refusal.
    this.spells.set(reason, this.spell(reason));
  }

  close(): void {
    for (const spell of this.spells.values()) clearTimeout(spell.timer);
    this.spells.clear();
  }
}
