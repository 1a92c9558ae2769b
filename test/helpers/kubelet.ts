import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A replay of kubelet's atomic writer (pkg/volume/util/atomic_writer.go, as of
 * Kubernetes 1.23 and later), step by step, with a pause between the steps so
 * that a watcher sees every intermediate state:
 *
 *  1. the new version is written to a new timestamped directory `..<time>`;
 *  2. a `..data_tmp` symlink to it is made, and renamed over `..data` (atomic);
 *  3. the top-level links of new keys (`name -> ..data/name`) are created;
 *  4. the top-level links of keys no longer there are removed;
 *  5. the old timestamped directory is removed.
 */
export class KubeletVolume {
  private version = 0;
  private keys = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly pauseMs = 100,
  ) {}

  async write(payload: Record<string, string>): Promise<void> {
    const pause = () => new Promise((r) => setTimeout(r, this.pauseMs));
    const data = path.join(this.dir, '..data');
    let oldTs: string | undefined;
    try {
      oldTs = readlinkSync(data);
    } catch {
      oldTs = undefined;
    }
    const ts = `..2026_12_02_10_00_0${this.version++}.${String(100000000 + this.version)}`;
    mkdirSync(path.join(this.dir, ts));
    for (const [name, text] of Object.entries(payload)) writeFileSync(path.join(this.dir, ts, name), text);
    await pause();
    symlinkSync(ts, path.join(this.dir, '..data_tmp'));
    renameSync(path.join(this.dir, '..data_tmp'), data);
    await pause();
    const next = new Set(Object.keys(payload));
    for (const name of next) if (!this.keys.has(name)) symlinkSync(path.join('..data', name), path.join(this.dir, name));
    await pause();
    for (const name of this.keys) if (!next.has(name)) unlinkSync(path.join(this.dir, name));
    this.keys = next;
    await pause();
    if (oldTs) rmSync(path.join(this.dir, oldTs), { recursive: true, force: true });
    await pause();
  }
}
