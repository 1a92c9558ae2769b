import type { Consumer } from './consumer.js';
import { ERROR_CODES, type Problem } from '../errors.js';
import type { InvalidFileMode } from './invalid-files.js';
import { compareBytes } from './byte-order.js';
import { computeRevision, sha256Hex, type SnapshotFile } from './revision.js';
import { validateSet, type ParsedPolicy, type SourceFile } from './validate.js';

/** A valid, complete policy set: what is "in force". */
export interface Snapshot {
  revision: string;
  files: SnapshotFile[];
  policies: ParsedPolicy[];
  ruleCount: number;
  /**
   * The text of each policy file, by path: its exact bytes, which a valid
   * policy file holds as UTF-8 (other watched files' contents never leave the
   * daemon). Kept as strings: small Buffers are slices of shared 8 KiB pool
   * slabs, and holding a thousand of them would hold the slabs.
   */
  contents: ReadonlyMap<string, string>;
  /** Unknown keys, and anything else worth saying that does not invalidate the set. */
  warnings: Problem[];
  /** Files left out because they are invalid (invalid_files = "skip-file"), with why. */
  skipped: SkippedFile[];
}

/** A file left out of the snapshot, and its problems. */
export interface SkippedFile {
  path: string;
  problems: Problem[];
}

export interface BuildOptions {
  allowEmpty: boolean;
  strictKeys?: boolean;
  invalidFiles?: InvalidFileMode;
  /** Who reads the files (default nachos), and whether a file it never reads is an error. */
  consumer?: Consumer;
  strictConsumer?: boolean;
}

/** A set that failed validation: what was tried, and why it was refused. */
export interface Rejection {
  /** Revision of the refused set (over the files that could be read). */
  revision: string;
  files: SnapshotFile[];
  problems: Problem[];
  warnings: Problem[];
  /** The policy files' bytes, by path (the history keeps them: what was refused can be read and compared). */
  contents?: ReadonlyMap<string, Buffer>;
}

export type BuildResult = { ok: true; snapshot: Snapshot } | { ok: false; rejection: Rejection };

/** The digest of every file, in path (byte) order. */
export function digestFiles(sources: readonly SourceFile[]): SnapshotFile[] {
  return sources
    .map((s) => ({ path: s.path, kind: s.kind, sha256: sha256Hex(s.content), bytes: s.content.byteLength }))
    .sort((a, b) => compareBytes(a.path, b.path));
}

/**
 * Builds a snapshot from the files read and the problems met reading them
 * (`files` are their digests, when the caller already has them). With
 * reject-set (the default), any problem at all rejects the whole set: nothing
 * half-applied. With skip-file, a file with problems is left out, and the
 * rest is the snapshot, unless nothing is left or the directory itself is the problem.
 */
export function buildSnapshot(
  sources: readonly SourceFile[],
  readProblems: readonly Problem[],
  options: BuildOptions,
  files: SnapshotFile[] = digestFiles(sources),
): BuildResult {
  const skipInvalid = options.invalidFiles === 'skip-file';
  const { policies, ruleCount, problems, warnings } = validateSet(sources, {
    strictKeys: options.strictKeys,
    skipInvalid,
    consumer: options.consumer ?? 'nachos',
    strictConsumer: options.strictConsumer,
  });
  const all = [...readProblems, ...problems];
  const reject = (extra: Problem[] = []): BuildResult => ({
    ok: false,
    rejection: {
      revision: computeRevision(files),
      files,
      problems: [...all, ...extra],
      warnings,
      contents: new Map(sources.filter((s) => s.kind === 'policy').map((s) => [s.path, s.content])),
    },
  });

  const invalid = new Set(all.map((p) => p.file));
  if (all.length > 0 && (!skipInvalid || invalid.has(''))) return reject();
  const kept = files.filter((f) => !invalid.has(f.path));
  if (!kept.some((f) => f.kind === 'policy') && !options.allowEmpty && !readProblems.some((p) => p.code === ERROR_CODES.POLICY_DIR_MISSING)) {
    const why = all.length > 0 ? 'no valid policy file (every one is invalid)' : 'no policy files (*.toml, *.yaml, *.yml) in the policy directory';
    return reject([{ code: ERROR_CODES.POLICY_EMPTY, file: '', message: `${why}; allow an empty set with allow_empty = true (--allow-empty)` }]);
  }
  const contents = new Map<string, string>();
  for (const source of sources) if (source.kind === 'policy' && !invalid.has(source.path)) contents.set(source.path, source.content.toString('utf8'));
  const skipped = [...invalid].sort(compareBytes).map((path) => ({ path, problems: all.filter((p) => p.file === path) }));
  return {
    ok: true,
    snapshot: {
      revision: computeRevision(kept),
      files: kept,
      policies,
      ruleCount,
      contents,
      warnings: warnings.filter((w) => !invalid.has(w.file)),
      skipped,
    },
  };
}

/**
 * The policy state as the rest of the daemon reads it (the reloader holds
 * it): the set in force, and the last set refused while it is still on disk.
 */
export interface PolicyState {
  readonly inForce: Snapshot | undefined;
  readonly lastRejection: Rejection | undefined;
}
