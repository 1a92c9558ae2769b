import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { messageOf } from '../errors.js';
import { sha256Hex } from '../policy/revision.js';
import { ENTRY_SCHEMA_VERSION, type HistoryEntry, type NewEntry } from './entry.js';
import { FileRefs, HistoryError, type HistoryStore, type IndexedEntry, type RolloutRecord } from './store.js';

/** The newest entries kept, unless configured otherwise. */
export const DEFAULT_KEEP = 100;
/** The lock is touched this often; one untouched for LOCK_STALE belongs to a sentinel that is gone. */
const LOCK_TOUCH = 10_000; // ms
const LOCK_STALE = 30_000; // ms

export interface LocalStoreOptions {
  dir: string;
  /** The newest entries kept; older ones, and the files only they used, are removed. */
  keep?: number;
  /** Read what is there, lock nothing, write nothing (the `history` command beside a running daemon). */
  readOnly?: boolean;
}

/**
 * The policy history in a local state directory:
 *
 *     <dir>/lock                   the sentinel that writes here (pid, host), touched every 10 s
 *     <dir>/entries/0000000042.json one entry each, written whole (temporary file, fsync, rename)
 *     <dir>/blobs/<sha256>          each policy file's bytes, once however many entries use it
 *     <dir>/rollout.json            a rollback in force, a halted canary
 *
 * Only one sentinel writes a directory (the lock says who); readers need no
 * lock: every file appears whole or not at all. Entries past `keep` are
 * removed, oldest first, with the files no kept entry uses.
 */
export class LocalHistoryStore implements HistoryStore {
  readonly where: string;
  private readonly entries: string;
  private readonly blobs: string;
  private readonly indexed: IndexedEntry[] = [];
  /** Every entry's number, oldest first (read from the directory's listing). */
  private numbers: number[] = [];
  private indexRead = false;
  /** How many kept entries use each stored file (writers only). */
  private readonly refs = new FileRefs();
  private lockTimer: NodeJS.Timeout | undefined;
  private readonly lockFile: string;
  private readonly keep: number;
  /** Appends run one after another. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly options: LocalStoreOptions) {
    this.where = options.dir;
    this.entries = path.join(options.dir, 'entries');
    this.blobs = path.join(options.dir, 'blobs');
    this.lockFile = path.join(options.dir, 'lock');
    this.keep = Math.max(1, options.keep ?? DEFAULT_KEEP);
  }

  /** Opens (and for a writer, makes and locks) the directory, and reads the index. */
  static async open(options: LocalStoreOptions): Promise<LocalHistoryStore> {
    const store = new LocalHistoryStore(options);
    await store.start();
    return store;
  }

  private async start(): Promise<void> {
    const { dir, readOnly } = this.options;
    if (readOnly) {
      const found = await fs.stat(dir).catch(() => undefined);
      if (!found?.isDirectory()) throw new HistoryError(`no policy history in ${dir} (no such directory; the sentinel records one there, or see --state-dir)`);
    } else {
      try {
        await fs.mkdir(this.entries, { recursive: true, mode: 0o700 });
        await fs.mkdir(this.blobs, { recursive: true, mode: 0o700 });
      } catch (err) {
        throw new HistoryError(`cannot make the state directory ${dir}: ${messageOf(err)}`);
      }
      await this.lock();
    }
    const names = (await fs.readdir(this.entries).catch(() => [] as string[])).filter((n) => /^\d{10}\.json$/.test(n)).sort();
    this.numbers = names.map((n) => Number(n.slice(0, 10)));
    // A reader lists the newest entries without reading the others; a writer needs every file list (what it may remove).
    if (!readOnly) {
      await this.readIndex();
      await this.prune();
    }
  }

  /** Reads every entry's number, kind, revision and key (and, for a writer, the files it uses). */
  private async readIndex(): Promise<void> {
    if (this.indexRead) return;
    this.indexRead = true;
    for (const n of this.numbers) {
      const entry = await this.get(n);
      if (!entry) continue;
      this.indexed.push(indexOf(entry));
      if (!this.options.readOnly) this.use(entry);
    }
    this.numbers = this.indexed.map((e) => e.n);
  }

  async append(entry: NewEntry, contents: ReadonlyMap<string, Buffer>): Promise<{ entry: HistoryEntry; appended: boolean }> {
    if (this.options.readOnly) throw new HistoryError(`${this.where} was opened to read`);
    const run = this.queue.then(() => this.appendNow(entry, contents));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async appendNow(entry: NewEntry, contents: ReadonlyMap<string, Buffer>): Promise<{ entry: HistoryEntry; appended: boolean }> {
    await this.readIndex();
    const newest = this.indexed.at(-1);
    if (newest?.key === entry.key) {
      const existing = await this.get(newest.n);
      if (existing) return { entry: existing, appended: false };
    }
    // The files first: an entry never names a file that is not there.
    for (const [sha256, bytes] of contents) {
      const file = path.join(this.blobs, sha256);
      if (this.refs.has(sha256) || (await exists(file))) continue;
      if (sha256Hex(bytes) !== sha256) throw new HistoryError(`the bytes given for ${sha256.slice(0, 12)} do not hash to it`);
      await writeWhole(file, bytes);
    }
    const stored: HistoryEntry = { schemaVersion: ENTRY_SCHEMA_VERSION, n: (newest?.n ?? 0) + 1, ...entry };
    await writeWhole(this.entryFile(stored.n), Buffer.from(`${JSON.stringify(stored)}\n`));
    this.indexed.push(indexOf(stored));
    this.numbers.push(stored.n);
    this.use(stored);
    await this.prune();
    return { entry: stored, appended: true };
  }

  async list(limit: number): Promise<HistoryEntry[]> {
    const newest = this.numbers.slice(-Math.max(0, limit)).reverse();
    const entries = await Promise.all(newest.map((n) => this.get(n)));
    return entries.filter((e): e is HistoryEntry => e !== undefined);
  }

  async index(): Promise<readonly IndexedEntry[]> {
    await this.readIndex();
    return this.indexed;
  }

  async get(n: number): Promise<HistoryEntry | undefined> {
    return this.readEntry(this.entryFile(n));
  }

  async content(sha256: string): Promise<Buffer | undefined> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return undefined;
    const bytes = await fs.readFile(path.join(this.blobs, sha256)).catch(() => undefined);
    // A file damaged on disk is as good as absent.
    return bytes !== undefined && sha256Hex(bytes) === sha256 ? bytes : undefined;
  }

  async readRollout(): Promise<RolloutRecord> {
    const text = await fs.readFile(path.join(this.where, 'rollout.json'), 'utf8').catch(() => undefined);
    if (text === undefined) return {};
    try {
      return JSON.parse(text) as RolloutRecord;
    } catch {
      throw new HistoryError(`${path.join(this.where, 'rollout.json')} is not JSON; move it aside to start without a rollback in force`);
    }
  }

  async writeRollout(record: RolloutRecord): Promise<void> {
    await writeWhole(path.join(this.where, 'rollout.json'), Buffer.from(`${JSON.stringify(record)}\n`));
  }

  async close(): Promise<void> {
    clearInterval(this.lockTimer);
    this.lockTimer = undefined;
    await this.queue;
    if (!this.options.readOnly) await fs.rm(this.lockFile, { force: true }).catch(() => undefined);
  }

  private entryFile(n: number): string {
    return path.join(this.entries, `${String(n).padStart(10, '0')}.json`);
  }

  private async readEntry(file: string): Promise<HistoryEntry | undefined> {
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const entry = JSON.parse(text) as HistoryEntry;
      return typeof entry.n === 'number' && typeof entry.revision === 'string' ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  private use(entry: HistoryEntry): void {
    this.refs.add(entry);
  }

  /** Removes entries past `keep`, oldest first, and the files only they used. */
  private async prune(): Promise<void> {
    while (this.indexed.length > this.keep) {
      const oldest = this.indexed.shift() as IndexedEntry;
      this.numbers.shift();
      await fs.rm(this.entryFile(oldest.n), { force: true });
      for (const sha of this.refs.release(oldest.n)) await fs.rm(path.join(this.blobs, sha), { force: true });
    }
  }

  /** Takes the lock, or says who holds it. A lock whose process is gone, or that nobody touched for 30 s, is taken over. */
  private async lock(): Promise<void> {
    const mine = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await fs.writeFile(this.lockFile, mine, { flag: 'wx', mode: 0o600 });
        this.lockTimer = setInterval(() => {
          const now = new Date();
          void fs.utimes(this.lockFile, now, now).catch(() => undefined);
        }, LOCK_TOUCH);
        this.lockTimer.unref();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new HistoryError(`cannot lock the state directory ${this.where}: ${messageOf(err)}`);
      }
      const holder = await this.lockHolder();
      if (holder.live) {
        throw new HistoryError(
          `the state directory ${this.where} is in use by process ${holder.pid} on ${holder.host} (${this.lockFile}); ` +
            'give each sentinel its own --state-dir, or share one history through JetStream ([history] store = "jetstream")',
        );
      }
      await fs.rm(this.lockFile, { force: true });
    }
    throw new HistoryError(`cannot lock the state directory ${this.where}: another sentinel took it at the same moment`);
  }

  private async lockHolder(): Promise<{ live: boolean; pid: string; host: string }> {
    const [text, stat] = await Promise.all([fs.readFile(this.lockFile, 'utf8').catch(() => ''), fs.stat(this.lockFile).catch(() => undefined)]);
    let holder: { pid?: unknown; host?: unknown } = {};
    try {
      holder = JSON.parse(text) as typeof holder;
    } catch {
      // Unreadable: judged by its age alone.
    }
    const pid = typeof holder.pid === 'number' ? holder.pid : undefined;
    const host = typeof holder.host === 'string' ? holder.host : '?';
    const fresh = stat !== undefined && Date.now() - stat.mtimeMs < LOCK_STALE;
    let live = fresh;
    if (host === hostname() && pid !== undefined) live = pid !== process.pid && alive(pid);
    return { live, pid: String(pid ?? '?'), host };
  }
}

function indexOf(entry: HistoryEntry): IndexedEntry {
  return { n: entry.n, kind: entry.kind, revision: entry.revision, audience: entry.audience, key: entry.key };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file, constants.F_OK).then(
    () => true,
    () => false,
  );
}

/** Writes `data` to `file` whole: a temporary file beside it, synced, then renamed over it. */
async function writeWhole(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
