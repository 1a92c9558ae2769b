import { IN_FORCE_FOR_EVERYONE, parseReference, type HistoryEntry, type NewEntry } from './entry.js';

/**
 * Where the policy history lives: a local state directory (local-store.ts),
 * or a JetStream stream shared by every central sentinel (jetstream-store.ts).
 * Both keep the entries in order and each file's bytes once, by digest.
 */
export interface HistoryStore {
  /** Where, in words: a path, or "JetStream stream NAME". */
  readonly where: string;
  /**
   * Records an entry and the contents of its policy files (by SHA-256; a digest already stored is not
   * stored again). When the newest entry has the same key (a replica recorded this event already), nothing
   * is appended and that entry is returned.
   */
  append(entry: NewEntry, contents: ReadonlyMap<string, Buffer>): Promise<{ entry: HistoryEntry; appended: boolean }>;
  /** The newest entries first, at most `limit`. */
  list(limit: number): Promise<HistoryEntry[]>;
  /** Every entry's number, kind, revision and audience, oldest first (what lookups need; no file lists). */
  index(): Promise<readonly IndexedEntry[]>;
  /** One entry by number. */
  get(n: number): Promise<HistoryEntry | undefined>;
  /** A file's bytes by SHA-256, if stored. */
  content(sha256: string): Promise<Buffer | undefined>;
  /** The rollout's own state (a rollback in force, a halted canary): what a restart picks up. */
  readRollout(): Promise<RolloutRecord>;
  writeRollout(record: RolloutRecord): Promise<void>;
  /**
   * Keeps the newest statement for everyone as published (and a body that travelled apart), where
   * sidecars read it when no sentinel answers: the JetStream store only.
   */
  writeCurrent?(message: Uint8Array, body?: { sha256: string; bytes: Buffer }): Promise<void>;
  close(): Promise<void>;
}

export interface IndexedEntry {
  n: number;
  kind: HistoryEntry['kind'];
  revision: string;
  audience: string[] | null;
  key: string;
}

/** A rollback in force: what it put back, what it replaced, and the directory's revision then. */
export interface Pin {
  revision: string;
  /** The revision in force before the rollback. */
  replaces: string;
  /** The policy directory's revision when the rollback was made: until the directory changes, the rollback holds. */
  sourceRevision: string;
  at: string;
  note?: string;
  by: string;
}

/** A canary that halted (or was aborted): its set is not offered again until the directory changes. */
export interface Halt {
  revision: string;
  /** The revision the canaries were given back. */
  previous: string;
  note: string;
  at: string;
}

export interface RolloutRecord {
  pin?: Pin;
  halted?: Halt;
}

/** A failure of the history store, worded for the operator. */
export class HistoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HistoryError';
  }
}

/**
 * The entry a reference names (`12`, `#12`, or 7+ hex digits of a revision: its newest entry that is not
 * a rejection, else its newest). Throws a HistoryError that says why none is.
 */
export async function resolveReference(store: Pick<HistoryStore, 'index' | 'get' | 'where'>, ref: string): Promise<HistoryEntry> {
  const parsed = parseReference(ref);
  if (!parsed) throw new HistoryError(`"${ref}" is neither an entry number (12, #12) nor a revision (7 to 64 hex digits)`);
  const index = await store.index();
  let n: number | undefined;
  if ('n' in parsed) {
    n = index.some((e) => e.n === parsed.n) ? parsed.n : undefined;
    if (n === undefined) {
      const range = index.length > 0 ? `entries ${index[0]?.n ?? 1} to ${index.at(-1)?.n ?? 1}` : 'no entry';
      throw new HistoryError(`no history entry #${parsed.n} in ${store.where} (it holds ${range})`);
    }
  } else {
    const matching = index.filter((e) => e.revision.startsWith(parsed.revision));
    const revisions = new Set(matching.map((e) => e.revision));
    if (revisions.size === 0) throw new HistoryError(`no revision starting ${parsed.revision} in ${store.where}`);
    if (revisions.size > 1) throw new HistoryError(`${parsed.revision} is ambiguous: ${[...revisions].map((r) => r.slice(0, 12)).join(', ')}; give more digits`);
    n = (matching.findLast((e) => e.kind !== 'rejected') ?? matching.at(-1))?.n;
  }
  const entry = n === undefined ? undefined : await store.get(n);
  if (!entry) throw new HistoryError(`history entry #${n ?? '?'} could not be read from ${store.where}`);
  return entry;
}

/** Whether an entry puts its revision in force for everyone (an accepted set announced to all, a rollback, a release, a canary released). */
export function putsInForce(e: Pick<IndexedEntry, 'kind' | 'audience'>): boolean {
  return IN_FORCE_FOR_EVERYONE.has(e.kind) || (e.kind === 'accepted' && e.audience === null);
}

/** The newest entry after which its revision was in force for everyone. */
export function newestInForce(index: readonly IndexedEntry[]): IndexedEntry | undefined {
  return index.findLast(putsInForce);
}

/** Entries looked back through for an event recorded already (a rejection, a canary's start, a halt). */
const RECENT = 16;

/**
 * Whether an event is in a shared history already, or no longer true of it, so that it must not be
 * appended: what keeps sentinel replicas that see the same change (sooner or later) from recording it
 * twice. An entry that puts a set in force for everyone is appended only on top of the set it replaced:
 * when the history's newest such entry is already its set (another replica recorded it), or neither its
 * set nor the one it replaced (the history moved on while this replica lagged), it is not, and that entry
 * is returned. Other entries are not appended when one of the newest few has the same key.
 */
export function alreadyRecorded(index: readonly IndexedEntry[], entry: Pick<NewEntry, 'kind' | 'audience' | 'revision' | 'previous' | 'key'>): IndexedEntry | undefined {
  if (!putsInForce(entry)) return index.slice(-RECENT).find((e) => e.key === entry.key);
  const head = newestInForce(index);
  if (head === undefined || head.revision === entry.previous) return undefined;
  return head;
}

/**
 * Which files each kept entry uses, and how many kept entries use each file: a file's bytes are
 * stored once however many sets use them, and go only with the last entry that used them.
 */
export class FileRefs {
  private readonly count = new Map<string, number>();
  private readonly filesOf = new Map<number, string[]>();

  /** Whether some kept entry uses the file. */
  has(sha256: string): boolean {
    return this.count.has(sha256);
  }

  /** Entry n, kept, uses these files. */
  add(entry: Pick<HistoryEntry, 'n' | 'files'>): void {
    const shas = [...new Set(entry.files.map((f) => f.sha256))];
    this.filesOf.set(entry.n, shas);
    for (const sha of shas) this.count.set(sha, (this.count.get(sha) ?? 0) + 1);
  }

  /** Entry n is no longer kept: the files no kept entry uses any more, to delete. */
  release(n: number): string[] {
    const unused: string[] = [];
    for (const sha of this.filesOf.get(n) ?? []) {
      const left = (this.count.get(sha) ?? 1) - 1;
      if (left > 0) this.count.set(sha, left);
      else {
        this.count.delete(sha);
        unused.push(sha);
      }
    }
    this.filesOf.delete(n);
    return unused;
  }

  clear(): void {
    this.count.clear();
    this.filesOf.clear();
  }
}
