/**
 * On the leader: which region node each online rack is connected through (its own, or a follower
 * that relays the rack's hello, reports and bye), and when each node was last heard of. Pure
 * bookkeeping, no clock and no I/O: the caller passes the time and acts on what comes back.
 *
 * - A hello moves the rack to the node it came through (a rack that reconnects elsewhere is there now).
 * - A bye counts only from the node the rack is connected through: the old node of a rack that
 *   moved says bye late, after the rack said hello elsewhere.
 * - A node's beat lists every rack socket it holds: racks it lists that are online nowhere are
 *   registered (a new leader learns the followers' racks so), racks connected through it that it no
 *   longer lists are gone (a bye that was lost). A rack online through another node stays there.
 * - A node not heard of within `staleMs` (killed, cut off from Redis) has lost its racks.
 */
export class RackPresence {
  private readonly via = new Map<string, string>();
  private readonly heard = new Map<string, number>();

  constructor(
    /** This node: its racks never go stale (their sockets say when they close). */
    private readonly self: string,
    private readonly staleMs: number,
  ) {}

  /** The node `rack` is connected through, or null when it is online nowhere. */
  where(rack: string): string | null {
    return this.via.get(rack) ?? null;
  }

  hello(rack: string, node: string, at: number): void {
    this.via.set(rack, node);
    this.heard.set(node, at);
  }

  /** True when the rack was connected through `node` (it is offline now). */
  bye(rack: string, node: string, at: number): boolean {
    this.heard.set(node, at);
    if (this.via.get(rack) !== node) return false;
    this.via.delete(rack);
    return true;
  }

  /** A node's list of the racks connected to it: which to register, and which are gone. */
  beat(node: string, racks: readonly string[], at: number): { added: string[]; gone: string[] } {
    this.heard.set(node, at);
    const listed = new Set(racks);
    const added = [...listed].filter((rack) => !this.via.has(rack));
    for (const rack of added) this.via.set(rack, node);
    const gone = [...this.via].filter(([rack, via]) => via === node && !listed.has(rack)).map(([r]) => r);
    for (const rack of gone) this.via.delete(rack);
    return { added, gone };
  }

  /** Racks connected through nodes not heard of since `at - staleMs`; they are forgotten here. */
  stale(at: number): string[] {
    const gone: string[] = [];
    for (const [rack, node] of this.via) {
      if (node === this.self) continue;
      if ((this.heard.get(node) ?? Number.NEGATIVE_INFINITY) > at - this.staleMs) continue;
      gone.push(rack);
      this.via.delete(rack);
    }
    return gone;
  }

  /** A new term: nothing is known to be connected until it says so. */
  reset(): void {
    this.via.clear();
    this.heard.clear();
  }
}
