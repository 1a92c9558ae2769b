/**
 * A bounded memory of the instances displaced to make room (heard only once,
 * or silent): 32-bit hashes of their keys in a fixed-size table, direct-mapped
 * (a new key overwrites whatever held its slot). Heard again, such an instance
 * has been heard twice: it comes back as one that keeps beating. That lets a
 * real instance that a flood of one-shot claims pushed out before its second
 * heartbeat back in for good, at a fixed cost in memory and O(1) per key,
 * whatever the flood.
 *
 * With 2^18 slots (1 MiB, allocated at the first displacement), a key survives
 * 5,000 displacements that follow it with a probability of 98%; and an
 * instance that keeps beating is remembered again each time it is displaced.
 * The hash is seeded per process, so names cannot be chosen to collide with a
 * given one; a false match costs no more than one forged instance let in as
 * established.
 */

/** Slots of the table, as a power of two, unless told otherwise. */
export const DISPLACED_SLOTS_LOG2 = 18;

export class DisplacedKeys {
  private table: Uint32Array | undefined;
  private readonly mask: number;

  constructor(
    private readonly slotsLog2 = DISPLACED_SLOTS_LOG2,
    private readonly seed = Math.floor(Math.random() * 2 ** 32),
  ) {
    this.mask = 2 ** slotsLog2 - 1;
  }

  get slots(): number {
    return 2 ** this.slotsLog2;
  }

  /** Remembers that `key` was displaced, in place of whatever held its slot. */
  remember(key: string): void {
    const h = this.hash(key);
    this.table ??= new Uint32Array(this.slots);
    this.table[h & this.mask] = h;
  }

  /** Whether `key` was remembered; it is forgotten then (one admission per displacement). */
  take(key: string): boolean {
    if (!this.table) return false;
    const h = this.hash(key);
    const slot = h & this.mask;
    if (this.table[slot] !== h) return false;
    this.table[slot] = 0;
    return true;
  }

  /** Seeded FNV-1a over the UTF-16 code units, then murmur3's finaliser; never 0 (an empty slot). */
  private hash(key: string): number {
    let h = (0x811c9dc5 ^ this.seed) >>> 0;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0 || 1;
  }
}
