import { formatProblem } from '../errors.js';
import { computeRevision } from '../policy/revision.js';
import type { BuildOptions, Snapshot } from '../policy/snapshot.js';
import { validateSet, type SourceFile } from '../policy/validate.js';
import type { HistoryEntry } from './entry.js';
import type { HistoryStore } from './store.js';

export type Rebuilt = { ok: true; snapshot: Snapshot } | { ok: false; why: string };

/**
 * The set a history entry recorded, made whole again from the stored files and
 * validated again by today's rules: what a rollback puts back in force. Its
 * revision is the recorded one (the other watched files' contents are never
 * stored, only their digests, as announcements carry them). Refused, saying
 * why, when a file is no longer stored or the set no longer validates.
 */
export async function rebuildSnapshot(entry: HistoryEntry, store: Pick<HistoryStore, 'content'>, options: BuildOptions): Promise<Rebuilt> {
  if (entry.kind === 'rejected') return { ok: false, why: `revision ${entry.revision.slice(0, 12)} was rejected (entry #${entry.n}): ${entry.problems?.[0] ?? 'invalid'}` };
  if (computeRevision(entry.files) !== entry.revision) return { ok: false, why: `entry #${entry.n} is damaged: its files do not hash to its revision` };
  const sources: SourceFile[] = [];
  for (const file of entry.files) {
    if (file.kind !== 'policy') continue;
    const content = await store.content(file.sha256);
    if (!content) return { ok: false, why: `${file.path} of revision ${entry.revision.slice(0, 12)} (${file.sha256.slice(0, 12)}) is no longer stored` };
    sources.push({ path: file.path, kind: 'policy', content });
  }
  const { policies, ruleCount, problems, warnings } = validateSet(sources, {
    strictKeys: options.strictKeys,
    consumer: options.consumer ?? 'nachos',
    strictConsumer: options.strictConsumer,
  });
  if (problems.length > 0) {
    const shown = problems.slice(0, 3).map((p) => formatProblem(p));
    return { ok: false, why: `revision ${entry.revision.slice(0, 12)} no longer validates: ${shown.join('; ')}${problems.length > 3 ? ` and ${problems.length - 3} more` : ''}` };
  }
  return {
    ok: true,
    snapshot: {
      revision: entry.revision,
      files: entry.files,
      policies,
      ruleCount,
      contents: new Map(sources.map((s) => [s.path, s.content.toString('utf8')])),
      warnings,
      skipped: [],
    },
  };
}
