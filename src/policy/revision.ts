import { createHash } from 'node:crypto';
import { sha256sumLines } from './sha256sum.js';
import type { FileKind } from './validate.js';

/**
 * What identifies a set of files: each file's SHA-256, and the revision over
 * them all. Light on purpose (no parser, no validator): subscribers and the
 * sidecar check what they receive with it.
 */

/** One file of a snapshot, as announced on the bus. */
export interface SnapshotFile {
  path: string;
  kind: FileKind;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
  bytes: number;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The revision of a set of files: the SHA-256 of the lines `<sha256>  <path>\n`
 * in byte order of path, which is exactly what `sha256sum` prints. So anyone
 * can recompute it from the announced `files`, or from the directory itself:
 * `cd policies && sha256sum $(ls *.toml *.yaml *.yml 2>/dev/null) | LC_ALL=C sort -k2 | sha256sum`.
 */
export function computeRevision(files: readonly Pick<SnapshotFile, 'path' | 'sha256'>[]): string {
  return createHash('sha256').update(sha256sumLines(files)).digest('hex');
}

export interface FileChanges {
  added: string[];
  modified: string[];
  removed: string[];
}

/** What changed between two file lists (either may be empty). */
export function diffFiles(previous: readonly SnapshotFile[], next: readonly SnapshotFile[]): FileChanges {
  const before = new Map(previous.map((f) => [f.path, f.sha256]));
  const after = new Map(next.map((f) => [f.path, f.sha256]));
  const added: string[] = [];
  const modified: string[] = [];
  for (const [path, sha] of after) {
    const old = before.get(path);
    if (old === undefined) added.push(path);
    else if (old !== sha) modified.push(path);
  }
  const removed = [...before.keys()].filter((p) => !after.has(p));
  return { added, modified, removed };
}
