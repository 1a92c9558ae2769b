import { close, constants, fstat, open, read, type Stats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { ERROR_CODES, messageOf, type Problem } from '../errors.js';
import type { SourceFile } from './validate.js';

/** Where the files of a snapshot come from. */
export interface LoadOptions {
  /** The policy directory (absolute). Every `*.toml`, `*.yaml` and `*.yml` directly inside it is a policy file. */
  dir: string;
  /** Other TOML files watched with the policies (absolute paths). */
  extraFiles: readonly string[];
  /** Files larger than this are refused, not read. */
  maxFileBytes: number;
}

export interface LoadResult {
  sources: SourceFile[];
  problems: Problem[];
  /** The policy directory does not exist (or is not a directory). */
  dirMissing: boolean;
  /** A file changed while it was being read: the caller should read again shortly. */
  unstable: boolean;
}

/** Files opened at once: a 1,000-file directory must not exhaust descriptors. */
const READ_CONCURRENCY = 32;

/**
 * Which directory entries are policy files: `*.toml`, and `*.yaml` or `*.yml`
 * as Nachos writes them, but not hidden files, Kubernetes' `..data`-style
 * entries, or editors' backup and lock files.
 */
export function isPolicyFileName(name: string): boolean {
  return /\.(toml|ya?ml)$/.test(name) && !/^[.#~]/.test(name);
}

/** The snapshot's name for a file: its path relative to the policy directory, with `/`. */
export function relativeName(dir: string, file: string): string {
  return path.relative(dir, file).split(path.sep).join('/');
}

/**
 * Reads every file of the set. This is the only place that touches the
 * filesystem for policies: it never throws, it reports each file it cannot
 * use as a problem, and it never blocks on a FIFO or reads past the size cap.
 */
export async function loadFiles(options: LoadOptions): Promise<LoadResult> {
  const problems: Problem[] = [];
  const targets: { abs: string; rel: string; kind: SourceFile['kind'] }[] = [];
  let dirMissing = false;

  try {
    const names = await readdir(options.dir);
    for (const name of names.filter(isPolicyFileName)) {
      targets.push({ abs: path.join(options.dir, name), rel: name, kind: 'policy' });
    }
  } catch (err) {
    dirMissing = true;
    const code = (err as NodeJS.ErrnoException).code;
    problems.push({
      code: ERROR_CODES.POLICY_DIR_MISSING,
      file: '',
      message:
        code === 'ENOENT'
          ? `policy directory ${options.dir} does not exist`
          : code === 'ENOTDIR'
            ? `policy directory ${options.dir} is not a directory`
            : `policy directory ${options.dir} cannot be read: ${messageOf(err)}`,
    });
  }
  const seen = new Set(targets.map((t) => t.abs));
  for (const abs of options.extraFiles) {
    if (!seen.has(abs)) targets.push({ abs, rel: relativeName(options.dir, abs), kind: 'config' });
  }

  const sources: SourceFile[] = [];
  let unstable = false;
  await forEachLimited(targets, READ_CONCURRENCY, async (target) => {
    const read = await readCapped(target.abs, options.maxFileBytes);
    if ('content' in read) {
      sources.push({ path: target.rel, kind: target.kind, content: read.content });
      unstable ||= read.changedWhileReading;
    } else {
      problems.push({ file: target.rel, ...read.problem });
    }
  });
  return { sources, problems, dirMissing, unstable };
}

type ReadOutcome =
  | { content: Buffer; changedWhileReading: boolean }
  | { problem: Pick<Problem, 'code' | 'message'> };

/** Reads one file through symlinks, refusing anything but a regular file within the cap. */
async function readCapped(file: string, maxBytes: number): Promise<ReadOutcome> {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = await fsOpen(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return { problem: { code: ERROR_CODES.POLICY_READ, message: `cannot be read: ${describeErrno(err)}` } };
  }
  try {
    const before = await fsFstat(fd);
    if (!before.isFile()) {
      return { problem: { code: ERROR_CODES.POLICY_NOT_FILE, message: `is not a regular file (${fileType(before)})` } };
    }
    if (before.size > maxBytes) {
      return { problem: tooLarge(maxBytes, before.size) };
    }
    // Read one byte past the cap, so a file that grew after the stat is caught too.
    const buffer = Buffer.allocUnsafe(Math.min(before.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const bytesRead = await fsRead(fd, buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) {
        if (length > maxBytes) return { problem: tooLarge(maxBytes) };
        break;
      }
    }
    const after = await fsFstat(fd);
    const changedWhileReading = after.size !== length || after.mtimeMs !== before.mtimeMs;
    return { content: buffer.subarray(0, length), changedWhileReading };
  } catch (err) {
    return { problem: { code: ERROR_CODES.POLICY_READ, message: `cannot be read: ${describeErrno(err)}` } };
  } finally {
    close(fd, () => undefined);
  }
}

// The callback API, promisified: FileHandle objects cost memory that 1,000 files make visible.
const fsOpen = promisify(open);
const fsFstat = promisify(fstat);
const fsRead = (fd: number, buffer: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((resolve, reject) => read(fd, buffer, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));

/** `size` is known from a stat; a file that grew while being read only shows it is over. */
function tooLarge(maxBytes: number, size?: number): Pick<Problem, 'code' | 'message'> {
  const actual = size === undefined ? '' : ` (${size} bytes)`;
  return { code: ERROR_CODES.POLICY_TOO_LARGE, message: `is over the size cap of ${maxBytes} bytes${actual}; see max_file_size` };
}

function fileType(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  return 'not a file';
}

function describeErrno(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file (a dangling symlink, or removed while reading)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return messageOf(err);
  }
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
