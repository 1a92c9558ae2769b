/**
 * A bounded memory of the instances displaced to make room (heard only once,
 * or silent): 32-bit hashes of their keys in a fixed-size table. Heard again,
 * such an instance has been heard twice: it comes back as one that keeps
 * beating. That lets a real instance that a flood of one-shot claims pushed
 * out before its second heartbeat back in for good, at a fixed cost in memory
 * and O(1) per key, whatever the flood.
 *
 * The table is 4-way set-associative: a key's hash picks a set of four slots,
 * and a key remembered there pushes out the set's oldest. A key is forgotten
 * only when four later keys land in its set. With 2^18 slots (1 MiB, allocated
 * at the first displacement), a key survives the 5,000 displacements that
 * follow it (a second of a 5,000-a-second flood) with a probability of
 * 1 - 1.3e-6, and 50,000 with 99.2% (a direct-mapped table of the same size
 * kept it with 98% and 83%); and an instance that keeps beating is remembered
 * again each time it is displaced. The hash is seeded per process, so names
 * cannot be chosen to collide with a given one; a false match costs no more
 * than one forged instance let in as established.
 */

/** Slots of the table, as a power of two, unless told otherwise. */
export const DISPLACED_SLOTS_LOG2 = 18;

/** Slots per set. */
const WAYS = 4;

export class DisplacedKeys {
  private table: Uint32Array | undefined;
  /** Sets - 1: a hash's low bits pick its set. */
  private readonly setMask: number;

  constructor(
    private readonly slotsLog2 = DISPLACED_SLOTS_LOG2,
    private readonly seed = Math.floor(Math.random() * 2 ** 32),
  ) {
    if (slotsLog2 < 2) throw new RangeError(`DisplacedKeys: at least 2^2 slots (one set of ${WAYS}), not 2^${slotsLog2}`);
    this.setMask = 2 ** (slotsLog2 - 2) - 1;
  }

  get slots(): number {
    return 2 ** this.slotsLog2;
  }

  /** Remembers that `key` was displaced: first in its set, the set's oldest pushed out. */
  remember(key: string): void {
    const h = this.hash(key);
    const table = (this.table ??= new Uint32Array(this.slots));
    const base = (h & this.setMask) * WAYS;
    let end = base + WAYS - 1;
    for (let i = base; i < base + WAYS; i++) {
      if (table[i] === h) {
        end = i; // Already there: moved to the front, nothing pushed out.
        break;
      }
    }
    table.copyWithin(base + 1, base, end);
    table[base] = h;
  }

  /** Whether `key` was remembered; it is forgotten then (one admission per displacement). */
  take(key: string): boolean {
    if (!this.table) return false;
    const h = this.hash(key);
    const base = (h & this.setMask) * WAYS;
    for (let i = base; i < base + WAYS; i++) {
      if (this.table[i] !== h) continue;
      this.table.copyWithin(i, i + 1, base + WAYS);
      this.table[base + WAYS - 1] = 0;
      return true;
    }
    return false;
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
