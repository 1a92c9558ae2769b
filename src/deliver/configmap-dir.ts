import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isPolicyFileName } from '../policy/load.js';

/**
 * A policy directory written the way kubelet writes a ConfigMap volume, so
 * that a reader only ever finds a whole set: every version in a directory of
 * its own (`..2026_12_02_12_00_00.Ab12Cd`), `..data` re-pointed to it in one
 * rename, one top-level link per file (`gateway.yaml -> ..data/gateway.yaml`),
 * links of files that left the set removed, older versions removed last.
 *
 * One step more than kubelet: a reader that watches file names (Nachos'
 * gateway reloads only on events for `*.yaml`) sees no event when `..data`
 * alone changes, so the link of every file that changed is replaced too, by a
 * rename (never absent, never half-written).
 */

/** The link kubelet re-points, and its temporary name. */
export const DATA_LINK = '..data';
const DATA_TMP = '..data_tmp';
/** What was delivered, inside each version: not linked, so no reader sees it. */
const META = '.nachos-sentinel.json';

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
  files: DeliveryFile[];
}

/** What is on disk: the set last delivered. */
export interface Delivered {
  revision: string;
  issuedAt: string | null;
  deliveredAt: string;
  files: { path: string; sha256: string }[];
}

/**
 * A name a set may deliver: one path component, not hidden (kubelet's own
 * entries start with `..`), no separator or NUL. Anything else could write
 * outside the directory or over its bookkeeping.
 */
export function isDeliverableName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !name.startsWith('.') && !/[/\\\0]/.test(name);
}

export class ConfigMapDir {
  constructor(readonly dir: string) {}

  /**
   * The set delivered before (across restarts), when the directory holds one
   * whole: its record, and every file's bytes hashing to it behind its link.
   * Undefined otherwise (nothing delivered yet, or not by us, or damaged).
   */
  async current(): Promise<Delivered | undefined> {
    try {
      const version = await readlink(join(this.dir, DATA_LINK));
      const meta = JSON.parse(await readFile(join(this.dir, version, META), 'utf8')) as Delivered;
      if (typeof meta.revision !== 'string' || !Array.isArray(meta.files)) return undefined;
      for (const f of meta.files) {
        if (!isDeliverableName(f.path)) return undefined;
        if (sha256(await readFile(join(this.dir, f.path))) !== f.sha256) return undefined;
      }
      return meta;
    } catch {
      return undefined;
    }
  }

  /** Writes `set` as the new version, in kubelet's order; resolves once it is whole on disk. */
  async write(set: DeliverySet): Promise<Delivered> {
    for (const f of set.files) {
      if (!isDeliverableName(f.path)) throw new Error(`refusing to deliver "${f.path}": not a plain file name`);
    }
    await mkdir(this.dir, { recursive: true });
    const before = await this.linkedFiles();
    // 1. The new version, whole, in a directory of its own (readable by the neighbour's user). Not fsynced,
    //    as kubelet does not: the page cache outlives our restarts; a machine crash leaves the previous version.
    const version = await mkdtemp(join(this.dir, `..${timestamp()}.`));
    await chmod(version, 0o755);
    for (const f of set.files) await writeNew(join(version, f.path), f.bytes);
    const delivered: Delivered = {
      revision: set.revision,
      issuedAt: set.issuedAt,
      deliveredAt: new Date().toISOString(),
      files: set.files.map((f) => ({ path: f.path, sha256: f.sha256 })),
    };
    await writeNew(join(version, META), Buffer.from(`${JSON.stringify(delivered)}\n`));
    // 2. `..data` re-pointed in one rename: every existing link now reads the new version.
    await rm(join(this.dir, DATA_TMP), { force: true });
    await symlink(basename(version), join(this.dir, DATA_TMP));
    await rename(join(this.dir, DATA_TMP), join(this.dir, DATA_LINK));
    // 3. Links for new files; links of changed files replaced (a rename: the event a name watcher needs).
    for (const f of set.files) {
      if (before.get(f.path) === f.sha256) continue;
      const tmp = join(this.dir, `.${f.path}.${process.pid}.link`);
      await rm(tmp, { force: true });
      await symlink(`${DATA_LINK}/${f.path}`, tmp);
      await rename(tmp, join(this.dir, f.path));
    }
    // 4. What left the set: its links, and policy files that are not ours.
    const names = new Set(set.files.map((f) => f.path));
    for (const entry of await readdir(this.dir)) {
      if (names.has(entry) || entry.startsWith('.')) continue;
      if ((await this.isOurLink(entry)) || (isPolicyFileName(entry) && (await lstat(join(this.dir, entry))).isFile())) {
        await unlink(join(this.dir, entry));
      }
    }
    // 5. Older versions, last: a reader still holding one open keeps reading it meanwhile.
    for (const entry of await readdir(this.dir)) {
      if (entry.startsWith('..') && entry !== DATA_LINK && entry !== basename(version)) await rm(join(this.dir, entry), { recursive: true, force: true });
    }
    return delivered;
  }

  /** Top-level links into `..data`, with the SHA-256 their version recorded. */
  private async linkedFiles(): Promise<Map<string, string>> {
    const previous = await this.current();
    return new Map((previous?.files ?? []).map((f) => [f.path, f.sha256]));
  }

  private async isOurLink(entry: string): Promise<boolean> {
    try {
      return (await readlink(join(this.dir, entry))).startsWith(`${DATA_LINK}/`);
    } catch {
      return false;
    }
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
