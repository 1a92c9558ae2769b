import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { PermanentRefusal } from '../subscriber/reload-applier.js';

/**
 * A policy directory written the way kubelet writes a ConfigMap volume, so
 * that a reader only ever finds a whole set: every version in a directory of
 * its own (`..2026_12_02_12_00_00.123.Ab12Cd`), `..data` re-pointed to it in
 * one rename, links of files that left the set removed (they dangle from the
 * swap on), one top-level link per file (`gateway.yaml -> ..data/gateway.yaml`),
 * older versions removed last.
 *
 * One step more than kubelet: a reader that watches file names (Nachos'
 * gateway reloads only on events for `*.yaml`) sees no event when `..data`
 * alone changes, so the link of every file that changed is replaced too, by a
 * rename (never absent, never half-written).
 *
 * It only ever removes what it wrote: its links, its version directories, its
 * temporary names. A directory that holds anything else is refused at start
 * (or, with take-over, what is there is moved aside, never deleted), and a
 * name taken by someone else's file is never written over. After a kill at
 * any point, `open` finds the set `..data` points to and repairs the links
 * around it: the old whole set, or the new whole set.
 */

/** The link kubelet re-points, and its temporary name. */
export const DATA_LINK = '..data';
const DATA_TMP = '..data_tmp';
/** What was delivered, inside each version: not linked, so no reader sees it. */
const META = '.nachos-sentinel.json';
/** Our version directories: kubelet's naming, a time and mkdtemp's six characters. */
const VERSION_NAME = /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{3}\.[A-Za-z0-9]{6}$/;
/** Our temporary link names (and those of earlier releases: `.<name>.<pid>.link`). */
const TEMP_LINK = /^(\.\.link_[a-f0-9]{16}|\..+\.\d+\.link)$/;
/** Where a take-over moves what it found. */
const TAKEN_OVER = /^\.\.taken-over-/;
/** The largest file name most filesystems take, in bytes. */
const NAME_MAX = 255;

export interface DeliveryFile {
  /** A plain file name (no directory). */
  path: string;
  sha256: string;
  bytes: Uint8Array;
}

export interface DeliverySet {
  /** The announced revision (of the whole set, as the central sentinel hashed it). */
  revision: string;
  issuedAt: string | null;
  expiresAt: string | null;
  files: DeliveryFile[];
}

/** What is on disk: the set last delivered, and the newest statement that confirmed it. */
export interface Delivered {
  revision: string;
  /** When the newest statement of this set was issued, and until when it holds (the replay check starts from them). */
  issuedAt: string | null;
  expiresAt: string | null;
  deliveredAt: string;
  files: { path: string; sha256: string }[];
}

/** What `open` found. */
export interface Opened {
  /** The set on disk, whole and as recorded; undefined when there is none (or its bytes were changed). */
  delivered: Delivered | undefined;
  /** What the replay check starts from: the record of the set `..data` points to, even if its bytes were changed. */
  record: Delivered | undefined;
  /** What was mended after a kill: links made or removed, versions and temporary names removed. */
  repaired: string[];
  /** With take-over: where what was found was moved. */
  movedTo?: string;
  moved?: string[];
}

/** A directory that holds files the sidecar did not write. */
export class ForeignFilesError extends Error {
  constructor(
    readonly dir: string,
    readonly entries: string[],
  ) {
    const shown = entries.slice(0, 10).join(', ') + (entries.length > 10 ? ` and ${entries.length - 10} more` : '');
    super(
      `${dir} holds files the sidecar did not write (${shown}); a reader of the directory would read them beside each delivered set. ` +
        'Move them away, or start with --take-over to have them moved into a ..taken-over-<time> directory (never deleted)',
    );
    this.name = 'ForeignFilesError';
  }
}

/**
 * A name a set may deliver: one path component of at most 255 bytes, not
 * hidden (kubelet's own entries start with `..`), no separator or NUL.
 * Anything else could write outside the directory or over its bookkeeping.
 */
export function isDeliverableName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= NAME_MAX && !name.startsWith('.') && !/[/\\\0]/.test(name);
}

export class ConfigMapDir {
  constructor(
    readonly dir: string,
    private readonly options: { takeOver?: boolean } = {},
  ) {}

  /**
   * At start: makes the directory if there is none; refuses one that holds
   * files we did not write (or, with take-over, moves them aside); then finds
   * the set `..data` points to and repairs everything around it that a kill
   * left behind. Throws ForeignFilesError, or the filesystem's error.
   */
  async open(): Promise<Opened> {
    await mkdir(this.dir, { recursive: true });
    const entries = await this.classify();
    const result: Opened = { delivered: undefined, record: undefined, repaired: [] };
    if (entries.foreign.length > 0) {
      if (!this.options.takeOver) throw new ForeignFilesError(this.dir, entries.foreign);
      const aside = join(this.dir, `..taken-over-${timestamp()}`);
      await mkdir(aside);
      for (const name of entries.foreign) await rename(join(this.dir, name), join(aside, name));
      result.movedTo = aside;
      result.moved = entries.foreign;
    }
    const version = await this.dataVersion();
    const record = version ? await readRecord(join(this.dir, version)) : undefined;
    result.record = record;
    const keep = new Set(record?.files.map((f) => f.path) ?? []);
    // Links: every file of the set behind its link; no link to a file that is not in it.
    for (const name of entries.links) {
      if (!keep.has(name) || (await readlink(join(this.dir, name))) !== `${DATA_LINK}/${name}`) {
        await unlink(join(this.dir, name));
        result.repaired.push(`removed link ${name}`);
      }
    }
    for (const name of keep) {
      if (!(await exists(join(this.dir, name)))) {
        await this.link(name);
        result.repaired.push(`made link ${name}`);
      }
    }
    // What a kill left: temporary names, versions other than the one in force.
    for (const name of entries.temporary) {
      await rm(join(this.dir, name), { force: true });
      result.repaired.push(`removed ${name}`);
    }
    for (const name of entries.versions) {
      if (name === version && record) continue;
      await rm(join(this.dir, name), { recursive: true, force: true });
      result.repaired.push(`removed version ${name}`);
    }
    if (!record && version !== undefined) {
      await rm(join(this.dir, DATA_LINK), { force: true });
      result.repaired.push(`removed ${DATA_LINK} (no version behind it)`);
    }
    if (record && (await this.bytesMatch(version as string, record))) result.delivered = record;
    return result;
  }

  /**
   * Writes `set` as the new version, in kubelet's order; resolves once it is
   * whole on disk. A set that can never be written here (a name the
   * filesystem refuses, two files of one name) throws a PermanentRefusal;
   * anything else (a full disk, a permission, a name taken by someone else's
   * file) throws as it is, and nothing of the new version is left behind.
   */
  async write(set: DeliverySet): Promise<Delivered> {
    const names = new Set<string>();
    for (const f of set.files) {
      if (!isDeliverableName(f.path)) throw new PermanentRefusal('unsafe name', `"${f.path}" is not a plain file name of at most ${NAME_MAX} bytes`);
      if (names.has(f.path)) throw new PermanentRefusal('unwritable', `two files are named "${f.path}"`);
      names.add(f.path);
    }
    await mkdir(this.dir, { recursive: true });
    const previous = await this.currentRecord();
    const before = new Map((previous?.files ?? []).map((f) => [f.path, f.sha256]));
    // Names that someone else's file holds are never written over.
    for (const name of names) {
      if ((await exists(join(this.dir, name))) && !(await this.isOurLink(name))) {
        throw new Error(`${join(this.dir, name)} is not ours (someone else's file); move it away and the set is delivered`);
      }
    }
    // 1. The new version, whole, in a directory of its own (readable by the neighbour's user). Not fsynced,
    //    as kubelet does not: the page cache outlives our restarts; a machine crash leaves the previous version.
    const version = await mkdtemp(join(this.dir, `..${timestamp()}.`));
    const delivered: Delivered = {
      revision: set.revision,
      issuedAt: set.issuedAt,
      expiresAt: set.expiresAt,
      deliveredAt: new Date().toISOString(),
      files: set.files.map((f) => ({ path: f.path, sha256: f.sha256 })),
    };
    try {
      await chmod(version, 0o755);
      for (const f of set.files) await writeNew(join(version, f.path), f.bytes);
      await writeNew(join(version, META), Buffer.from(`${JSON.stringify(delivered)}\n`));
    } catch (err) {
      await rm(version, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      // The filesystem refuses the name itself: no retry will change that.
      if (code === 'ENAMETOOLONG' || code === 'EINVAL' || code === 'EILSEQ') throw new PermanentRefusal('unwritable', (err as Error).message);
      throw err;
    }
    // 2. `..data` re-pointed in one rename: every existing link now reads the new version.
    await rm(join(this.dir, DATA_TMP), { force: true });
    await symlink(basename(version), join(this.dir, DATA_TMP));
    await rename(join(this.dir, DATA_TMP), join(this.dir, DATA_LINK));
    // 3. Links of what left the set, first: from the swap on they dangle (a reader listing the directory
    //    would find a name it cannot open, which Nachos' loader records as an error). Only ours.
    for (const entry of await readdir(this.dir)) {
      if (!names.has(entry) && !entry.startsWith('.') && (await this.isOurLink(entry))) await unlink(join(this.dir, entry));
    }
    // 4. Links for new files; links of changed files replaced (a rename: the event a name watcher needs).
    for (const f of set.files) {
      if (before.get(f.path) !== f.sha256) await this.link(f.path);
    }
    // 5. Older versions, last: a reader still holding one open keeps reading it meanwhile. Only ours.
    for (const entry of await readdir(this.dir)) {
      if (VERSION_NAME.test(entry) && entry !== basename(version)) await rm(join(this.dir, entry), { recursive: true, force: true });
    }
    return delivered;
  }

  /** Records a newer statement of the set on disk (its issue and expiry), so that a restart starts its replay check from it. */
  async confirm(statement: { issuedAt: string; expiresAt: string | null }): Promise<void> {
    const version = await this.dataVersion();
    const record = version ? await readRecord(join(this.dir, version)) : undefined;
    if (!record) return;
    const tmp = join(this.dir, version as string, `${META}.${randomBytes(4).toString('hex')}`);
    await writeNew(tmp, Buffer.from(`${JSON.stringify({ ...record, ...statement })}\n`));
    await rename(tmp, join(this.dir, version as string, META));
  }

  /** Entries that are not ours (someone wrote them while we ran): reported, never removed. */
  async foreign(): Promise<string[]> {
    return (await this.classify()).foreign;
  }

  private async currentRecord(): Promise<Delivered | undefined> {
    const version = await this.dataVersion();
    return version ? readRecord(join(this.dir, version)) : undefined;
  }

  /** The version `..data` points to, when it is one of ours. */
  private async dataVersion(): Promise<string | undefined> {
    try {
      const target = await readlink(join(this.dir, DATA_LINK));
      return VERSION_NAME.test(target) ? target : undefined;
    } catch {
      return undefined;
    }
  }

  /** Every file of the record hashes to its SHA-256, read from the version itself. */
  private async bytesMatch(version: string, record: Delivered): Promise<boolean> {
    try {
      for (const f of record.files) {
        if (sha256(await readFile(join(this.dir, version, f.path))) !== f.sha256) return false;
      }
      return true;
    } catch {
      return false;
    }
  }

  /** `name -> ..data/name`, made under a temporary name and renamed into place. */
  private async link(name: string): Promise<void> {
    const tmp = join(this.dir, `..link_${randomBytes(8).toString('hex')}`);
    await symlink(`${DATA_LINK}/${name}`, tmp);
    await rename(tmp, join(this.dir, name));
  }

  private async isOurLink(entry: string): Promise<boolean> {
    try {
      const target = await readlink(join(this.dir, entry));
      return target.startsWith(`${DATA_LINK}/`) && isDeliverableName(target.slice(DATA_LINK.length + 1));
    } catch {
      return false;
    }
  }

  /** The directory's entries: ours by kind, and what is not ours. */
  private async classify(): Promise<{ links: string[]; versions: string[]; temporary: string[]; foreign: string[] }> {
    const out = { links: [] as string[], versions: [] as string[], temporary: [] as string[], foreign: [] as string[] };
    for (const name of await readdir(this.dir)) {
      const stat = await lstat(join(this.dir, name)).catch(() => undefined);
      if (!stat) continue;
      if (name === DATA_LINK && stat.isSymbolicLink()) continue;
      if (TAKEN_OVER.test(name) && stat.isDirectory()) continue;
      if (name === 'lost+found' && stat.isDirectory()) continue; // a filesystem's root, not a file
      if (VERSION_NAME.test(name) && stat.isDirectory()) out.versions.push(name);
      else if ((name === DATA_TMP || TEMP_LINK.test(name)) && stat.isSymbolicLink()) out.temporary.push(name);
      else if (stat.isSymbolicLink() && (await this.isOurLink(name))) out.links.push(name);
      else out.foreign.push(name);
    }
    return out;
  }
}

async function readRecord(version: string): Promise<Delivered | undefined> {
  try {
    const meta = JSON.parse(await readFile(join(version, META), 'utf8')) as Delivered;
    if (typeof meta.revision !== 'string' || !Array.isArray(meta.files) || !meta.files.every((f) => typeof f?.path === 'string' && isDeliverableName(f.path) && typeof f.sha256 === 'string')) return undefined;
    return { ...meta, expiresAt: meta.expiresAt ?? null };
  } catch {
    return undefined;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch {
    return false;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `2026_12_02_12_00_00.123`: kubelet names its versions by time. */
function timestamp(): string {
  return new Date()
    .toISOString()
    .replace(/[-T:]/g, '_')
    .replace(/Z$/, '');
}

/** A new file (never an existing one), readable by the neighbour's user. */
async function writeNew(file: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  try {
    await handle.writeFile(bytes);
  } finally {
    await handle.close();
  }
}
