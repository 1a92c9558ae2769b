import { close, constants, fstat, open, read, type Stats } from 'node:fs';
import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { ERROR_CODES, messageOf, type Problem } from '../errors.js';
import type { SourceFile } from './validate.js';
import { compareBytes } from './byte-order.js';

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
  /** The newest modification time among the files read (ms since the epoch; 0 with none). */
  newestMtimeMs: number;
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

  // Symlinks must stay inside the directory.
  const links: { abs: string; rel: string }[] = [];
  const realDir = await realpath(options.dir).catch(() => options.dir);
  try {
    // A Kubernetes ConfigMap volume is read through `..data`, where the set is whole at every
    // moment: kubelet re-points `..data` first, and only then adds and removes the top-level links
    // of new and deleted keys, so the top level mixes two versions for a while.
    // https://github.com/kubernetes/kubernetes/blob/master/pkg/volume/util/atomic_writer.go
    const listed = await listPolicyDirectory(options.dir, realDir);
    problems.push(...listed.problems);
    for (const entry of listed.entries) {
      if (entry.isLink) links.push({ abs: entry.abs, rel: entry.name });
      else targets.push({ abs: entry.abs, rel: entry.name, kind: 'policy' });
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
  if (links.length > 0) {
    await forEachLimited(links, READ_CONCURRENCY, async (link) => {
      const target = await realpath(link.abs).catch(() => undefined);
      // A dangling link is left to the read, which reports it as unreadable.
      if (target !== undefined && !target.startsWith(realDir + path.sep)) {
        problems.push({
          code: ERROR_CODES.POLICY_OUTSIDE_DIR,
          file: link.rel,
          message: `is a symlink to ${target}, outside the policy directory; only links inside it are followed`,
        });
      } else {
        targets.push({ ...link, kind: 'policy' });
      }
    });
  }
  const seen = new Set(targets.map((t) => t.abs));
  for (const abs of options.extraFiles) {
    if (!seen.has(abs)) targets.push({ abs, rel: relativeName(options.dir, abs), kind: 'config' });
  }

  const sources: SourceFile[] = [];
  let unstable = false;
  let newestMtimeMs = 0;
  await forEachLimited(targets, READ_CONCURRENCY, async (target) => {
    const read = await readCapped(target.abs, options.maxFileBytes);
    if ('content' in read) {
      sources.push({ path: target.rel, kind: target.kind, content: read.content });
      unstable ||= read.changedWhileReading;
      newestMtimeMs = Math.max(newestMtimeMs, read.mtimeMs);
    } else {
      problems.push({ file: target.rel, ...read.problem });
    }
  });
  // Reads finish in any order; problems are reported in the order of the files, run after run.
  problems.sort((a, b) => compareBytes(a.file, b.file));
  return { sources, problems, dirMissing, unstable, newestMtimeMs };
}

/** The symlink Kubernetes re-points when a ConfigMap volume changes. */
export const K8S_DATA_LINK = '..data';

interface Listed {
  entries: { name: string; abs: string; isLink: boolean }[];
  problems: Problem[];
}

/**
 * The policy files of a directory: its own entries, or, when it holds a
 * Kubernetes `..data` link to a directory inside it, that directory's. Names
 * are read as bytes: one that is not UTF-8, or that holds a control character
 * or a backslash, cannot be written in a `sha256sum` line without ambiguity
 * (a newline in a name could forge a second line), so it is refused, named.
 */
async function listPolicyDirectory(dir: string, realDir: string): Promise<Listed> {
  let listDir = dir;
  const data = path.join(dir, K8S_DATA_LINK);
  const dataTarget = await realpath(data).catch(() => undefined);
  if (dataTarget !== undefined && dataTarget.startsWith(realDir + path.sep) && (await stat(dataTarget).catch(() => undefined))?.isDirectory()) {
    listDir = data;
  }
  const raw = await readdir(listDir, { withFileTypes: true, encoding: 'buffer' });
  const listed: Listed = { entries: [], problems: [] };
  for (const entry of raw) {
    const bytes = entry.name as unknown as Buffer;
    const name = nameOf(bytes);
    if (name === undefined) {
      const shown = bytes.toString('utf8');
      if (isPolicyFileName(shown)) {
        listed.problems.push({ code: ERROR_CODES.POLICY_BAD_NAME, file: JSON.stringify(shown).slice(1, -1), message: 'file name is not valid UTF-8 text; rename it' });
      }
      continue;
    }
    if (!isPolicyFileName(name)) continue;
    if (/[\u0000-\u001f\u007f\\]/.test(name)) {
      listed.problems.push({
        code: ERROR_CODES.POLICY_BAD_NAME,
        file: JSON.stringify(name).slice(1, -1),
        message: 'file name holds a control character (a newline, say) or a backslash, which a sha256sum line cannot carry unambiguously; rename it',
      });
      continue;
    }
    listed.entries.push({ name, abs: path.join(listDir, name), isLink: entry.isSymbolicLink() });
  }
  return listed;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
function nameOf(bytes: Buffer): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

type ReadOutcome =
  | { content: Buffer; changedWhileReading: boolean; mtimeMs: number }
  | { problem: Pick<Problem, 'code' | 'message'> };

/** Reads one file through symlinks, refusing anything but a regular file within the cap. */
async function readCapped(file: string, maxBytes: number): Promise<ReadOutcome> {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = await fsOpen(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { problem: { code: ERROR_CODES.POLICY_READ, message: await whyMissing(file) } };
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
    return { content: buffer.subarray(0, length), changedWhileReading, mtimeMs: after.mtimeMs };
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

/** A file that could not be opened because it is not there: a link to nothing, or no file at all. */
async function whyMissing(file: string): Promise<string> {
  const link = await lstat(file).then(
    (s) => s.isSymbolicLink(),
    () => false,
  );
  if (link) {
    const target = await readlink(file).catch(() => '?');
    return `is a dangling symlink: its target ${target} does not exist`;
  }
  return 'does not exist (or was removed while being read)';
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
