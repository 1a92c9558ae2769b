import { createHash } from 'node:crypto';
import { ERROR_CODES, type Problem } from '../errors.js';
import { compareBytes, sha256sumLines } from './sha256sum.js';
import { validateSet, type FileKind, type ParsedPolicy, type SourceFile } from './validate.js';

/** One file of a snapshot, as announced on the bus. */
export interface SnapshotFile {
  path: string;
  kind: FileKind;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
  bytes: number;
}

/** A valid, complete policy set: what is "in force". */
export interface Snapshot {
  revision: string;
  files: SnapshotFile[];
  policies: ParsedPolicy[];
  ruleCount: number;
}

/** A set that failed validation: what was tried, and why it was refused. */
export interface Rejection {
  /** Revision of the refused set (over the files that could be read). */
  revision: string;
  files: SnapshotFile[];
  problems: Problem[];
}

export type BuildResult = { ok: true; snapshot: Snapshot } | { ok: false; rejection: Rejection };

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The digest of every file, in path (byte) order. */
export function digestFiles(sources: readonly SourceFile[]): SnapshotFile[] {
  return sources
    .map((s) => ({ path: s.path, kind: s.kind, sha256: sha256Hex(s.content), bytes: s.content.byteLength }))
    .sort((a, b) => compareBytes(a.path, b.path));
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

/**
 * Builds a snapshot from the files read and the problems met reading them
 * (`files` are their digests, when the caller already has them). Any problem
 * at all rejects the whole set: nothing half-applied.
 */
export function buildSnapshot(
  sources: readonly SourceFile[],
  readProblems: readonly Problem[],
  options: { allowEmpty: boolean },
  files: SnapshotFile[] = digestFiles(sources),
): BuildResult {
  const revision = computeRevision(files);
  const { policies, ruleCount, problems } = validateSet(sources);
  const all = [...readProblems, ...problems];
  const policyCount = files.filter((f) => f.kind === 'policy').length;
  if (policyCount === 0 && !options.allowEmpty && !readProblems.some((p) => p.code === ERROR_CODES.POLICY_DIR_MISSING)) {
    all.push({
      code: ERROR_CODES.POLICY_EMPTY,
      file: '',
      message: 'no policy files (*.toml, *.yaml, *.yml) in the policy directory; set allow_empty = true to allow an empty set',
    });
  }
  if (all.length > 0) return { ok: false, rejection: { revision, files, problems: all } };
  return { ok: true, snapshot: { revision, files, policies, ruleCount } };
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
