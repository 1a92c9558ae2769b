import { makeEntry, ruleIndex, type NewEntry } from '../../src/history/entry.js';
import type { Snapshot } from '../../src/policy/snapshot.js';

/**
 * The entry a central sentinel records when it puts `snapshot` in force after `previous`, and the
 * files' bytes by digest, as the rollout hands them to a history store.
 */
export function acceptedEntry(
  snapshot: Snapshot,
  previous: Snapshot | undefined,
  { by = 'sentinel/test', at = Date.now(), key = `accepted:${snapshot.revision}:${previous?.revision ?? ''}`, signer }: { by?: string; at?: number; key?: string; signer?: string } = {},
): { entry: NewEntry; contents: Map<string, Buffer> } {
  const entry = makeEntry({
    kind: 'accepted',
    revision: snapshot.revision,
    files: snapshot.files,
    previous: previous ? { revision: previous.revision, files: previous.files, rules: ruleIndex(previous.policies) } : undefined,
    rules: ruleIndex(snapshot.policies),
    warnings: 0,
    audience: null,
    by,
    at,
    key,
    ...(signer ? { signer } : {}),
  });
  const contents = new Map(snapshot.files.map((f) => [f.sha256, Buffer.from(snapshot.contents.get(f.path) as string)]));
  return { entry, contents };
}
