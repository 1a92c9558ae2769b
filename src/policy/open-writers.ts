import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { isPolicyFileName } from './load.js';

/**
 * Which files of a directory another process has open for writing, as far as
 * this process can tell: Linux's /proc lists every process's descriptors and
 * their open flags. A writer that pauses mid-file (200 ms between two rules,
 * say) leaves a prefix that may validate on its own; while it still holds the
 * file open for writing, the read can wait. Writers this process cannot see
 * (another container's PID namespace, another user without root) are not
 * found: for them, the contract stands (write a temporary file, then rename).
 */

/** Past this many processes the scan is skipped: its cost would be felt by every reload. */
export const MAX_PROCESSES = 1024;
const O_ACCMODE = 0o3;

/** Policy files of `dir` (through symlinks) that another process holds open for writing, with a pid of each; never throws. */
export async function policyFilesOpenForWriting(dir: string): Promise<Map<string, number>> {
  const real = await realpath(dir).catch(() => undefined);
  return real === undefined ? new Map() : openForWriting(real, isPolicyFileName).catch(() => new Map<string, number>());
}

/** Names (relative to `dir`, which must be a real path) of files open for writing by another process. */
export async function openForWriting(dir: string, accepts: (name: string) => boolean): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid);
  } catch {
    return found; // not Linux, or no /proc
  }
  if (pids.length > MAX_PROCESSES) return found;
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  await Promise.all(
    pids.map(async (pid) => {
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      await Promise.all(
        fds.map(async (fd) => {
          const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
          if (!target.startsWith(prefix)) return;
          const name = target.slice(prefix.length);
          if (name.includes(path.sep) || !accepts(name)) return;
          const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
          const flags = Number.parseInt(/^flags:\s*([0-7]+)/m.exec(info)?.[1] ?? '0', 8);
          if ((flags & O_ACCMODE) !== 0) found.set(name, Number(pid));
        }),
      );
    }),
  );
  return found;
}
