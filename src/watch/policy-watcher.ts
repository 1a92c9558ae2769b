import { EventEmitter } from 'node:events';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { isPolicyFileName, K8S_DATA_LINK } from '../policy/load.js';

/**
 * What a change looks like to the reloader:
 * - `change`: a file was written, renamed or removed; more may follow, so wait for quiet;
 * - `swap`: Kubernetes replaced its `..data` link, which swaps the whole set at once;
 * - `directory`: a watched directory appeared, disappeared or was replaced.
 */
export const DIRTY_KINDS = ['change', 'swap', 'directory'] as const;
export type DirtyKind = (typeof DIRTY_KINDS)[number];

export interface PolicyWatcherOptions {
  /** The policy directory (absolute). */
  dir: string;
  /** Other files to watch (absolute). */
  extraFiles: readonly string[];
  /** How often to check that each watched directory still is the one being watched. */
  checkIntervalMs: number;
}

export interface PolicyWatcherEvents {
  dirty: [kind: DirtyKind, file: string];
  error: [error: Error];
}

/** How often to check the watched directories. */
export const DEFAULT_DIR_CHECK_INTERVAL = 1000; // 1 s

/**
 * The chokidar adapter. It only says "something changed" (the reloader reads
 * and hashes to find out what); it never reads a file.
 *
 * It listens to chokidar's `raw` events rather than `change`: chokidar drops
 * every `change` of a path within 50 ms of the previous one and emits no
 * trailing event (https://github.com/paulmillr/chokidar/issues/1455), so the
 * last chunk of a chunked write would go unseen.
 *
 * chokidar also stops watching a directory that is removed, and never starts
 * on one that does not exist yet; so each directory's identity (its real path,
 * device and inode) is checked every `checkIntervalMs` and its watcher rebuilt
 * when it changes. A directory given as a symlink is watched at its real path
 * (chokidar, not following links, reports nothing for a symlinked root), and
 * watched anew when the link is re-pointed (`ln -s v2 tmp && mv -T tmp policies`).
 */
export class PolicyWatcher extends EventEmitter<PolicyWatcherEvents> {
  private readonly dirs: WatchedDir[];
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: PolicyWatcherOptions) {
    super();
    const byDir = new Map<string, Set<string>>();
    for (const file of options.extraFiles) {
      const dir = path.dirname(file);
      if (!byDir.has(dir)) byDir.set(dir, new Set());
      byDir.get(dir)?.add(path.basename(file));
    }
    // The policy directory: every policy file name. Other directories: the named files only.
    this.dirs = [{ dir: options.dir, accepts: (name) => isPolicyFileName(name) || byDir.get(options.dir)?.has(name) === true }];
    for (const [dir, names] of byDir) {
      if (dir !== options.dir) this.dirs.push({ dir, accepts: (name) => names.has(name) });
    }
  }

  /** Starts watching; resolves when every existing directory is watched. */
  async start(): Promise<void> {
    await Promise.all(this.dirs.map((d) => this.check(d)));
    this.timer = setInterval(() => {
      for (const d of this.dirs) void this.check(d);
    }, this.options.checkIntervalMs);
    this.timer.unref();
  }

  /** Stops every watcher, waiting out a rebuild in flight. Idempotent: later calls return the same promise. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      await Promise.all(this.dirs.map((d) => d.checking));
      await Promise.all(this.dirs.map((d) => d.watcher?.close()));
      for (const d of this.dirs) d.watcher = undefined;
    })();
    return this.closing;
  }

  /** (Re)builds a directory's watcher when the directory is not the one watched. One at a time per directory. */
  private check(d: WatchedDir): Promise<void> {
    if (d.checking || this.closing) return d.checking ?? Promise.resolve();
    d.checking = this.rebuild(d)
      .catch((err: unknown) => {
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
      })
      .finally(() => {
        d.checking = undefined;
      });
    return d.checking;
  }

  private async rebuild(d: WatchedDir): Promise<void> {
    const real = await realpath(d.dir).catch(() => undefined);
    const identity =
      real === undefined
        ? undefined
        : await stat(real).then(
            (s) => (s.isDirectory() ? `${real}\u0000${s.dev}:${s.ino}` : undefined),
            () => undefined,
          );
    const firstCheck = !d.checked;
    d.checked = true;
    if ((identity === d.identity && !firstCheck) || this.closing) return;
    d.identity = identity;
    await d.watcher?.close();
    d.watcher = identity === undefined || real === undefined ? undefined : await this.watchDir(d, real);
    if (!firstCheck) this.emit('dirty', 'directory', d.dir);
  }

  private watchDir(d: WatchedDir, real: string): Promise<FSWatcher> {
    const watcher = watch(real, {
      depth: 0,
      ignoreInitial: true,
      // A Kubernetes swap shows as a change of `..data` itself only when links are not followed.
      followSymlinks: false,
      // We coalesce ourselves; chokidar's atomic mode would delay unlinks by 100 ms.
      atomic: false,
      ignorePermissionErrors: true,
      // Only the directory's own watch: on Linux it reports writes to the files in it too, and
      // one watch per file would cost memory for 1,000 files and tell us nothing more.
      ignored: (p: string) => p !== real,
    });
    watcher.on('raw', (_event, name) => {
      const base = path.basename(String(name));
      if (base === K8S_DATA_LINK) this.emit('dirty', 'swap', path.join(d.dir, base));
      else if (d.accepts(base)) this.emit('dirty', 'change', path.join(d.dir, base));
    });
    watcher.on('unlinkDir', (p) => {
      if (p === real) void this.check(d);
    });
    watcher.on('error', (err) => {
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
      void this.check(d);
    });
    return new Promise((resolve) => watcher.once('ready', () => resolve(watcher)));
  }
}

interface WatchedDir {
  dir: string;
  accepts: (name: string) => boolean;
  /** Real path, `dev:ino` of the directory being watched; undefined while it does not exist. */
  identity?: string | undefined;
  watcher?: FSWatcher | undefined;
  /** Checked at least once: later identity changes are reported as dirty. */
  checked?: boolean;
  /** The rebuild in flight, if any. */
  checking?: Promise<void> | undefined;
}
