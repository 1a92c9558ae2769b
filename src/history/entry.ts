import { isDeepStrictEqual } from 'node:util';
import { formatProblem, type Problem } from '../errors.js';
import { diffFiles, type FileChanges, type SnapshotFile } from '../policy/revision.js';
import type { ParsedPolicy } from '../policy/validate.js';

/**
 * One line of the policy history: an event that changed, or tried to change,
 * what is in force. Entries are appended, never edited; the store numbers them.
 *
 * - `accepted`: a valid set read from the policy directory, put in force for its audience;
 * - `rejected`: a set refused, with its problems (nothing changed);
 * - `rollback`: an earlier set put back in force by an operator (`replaces` says what it replaced);
 * - `release`: back to the directory's set after a rollback (by an operator, or the directory changed);
 * - `released`: a canary's set, given to everyone after its bake;
 * - `halted`: a canary got worse; its canaries were given the previous set back (`note` says why);
 * - `promoted`, `aborted`: an operator decided a canary by hand.
 */
export const ENTRY_KINDS = ['accepted', 'rejected', 'rollback', 'release', 'released', 'halted', 'promoted', 'aborted'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** Kinds after which the entry's revision is in force for everyone. */
export const IN_FORCE_FOR_EVERYONE: ReadonlySet<EntryKind> = new Set(['rollback', 'release', 'released', 'promoted']);

/** Problems recorded with a rejected set, at most (the rest are counted). */
const MAX_PROBLEMS = 50;
/** Rule ids named per list, at most (the rest are counted). */
const MAX_RULES = 200;

export const ENTRY_SCHEMA_VERSION = 1;

export interface RuleChanges {
  added: string[];
  removed: string[];
  changed: string[];
  /** Ids left out of the lists above, when there were more than MAX_RULES. */
  more?: number;
}

/** An entry as recorded. */
export interface HistoryEntry {
  schemaVersion: typeof ENTRY_SCHEMA_VERSION;
  /** Its place in the history: 1 for the first, +1 for each (the store assigns it). */
  n: number;
  /** When it was recorded (ISO 8601). */
  at: string;
  kind: EntryKind;
  /** The set this entry is about. */
  revision: string;
  /** The revision in force for everyone before it, if any. */
  previous: string | null;
  /** A rollback: the revision it replaced. */
  replaces?: string;
  /** Whose words: the operator's (`rollback --reason`), or why a canary halted. */
  note?: string;
  /** Who the set was announced to: null for everyone, else the canary audience. */
  audience: string[] | null;
  files: SnapshotFile[];
  /** Files added, changed and removed since `previous`. */
  changed: FileChanges;
  /** Rules (by id) added, removed and changed since `previous`. */
  rules: RuleChanges;
  counts: { files: number; rules: number; warnings: number };
  /** A rejected set: why (formatted, at most MAX_PROBLEMS; `problemCount` says how many there were). */
  problems?: string[];
  problemCount?: number;
  /** The public key that signed its announcement, when reloads are signed. */
  signer: string | null;
  /** The head of the announcement as published (no file contents, no documents): its signature, sequence, times. */
  announcement?: Record<string, unknown>;
  /** Who recorded it (`component/instance`). */
  by: string;
  /**
   * What identifies the event among sentinel replicas: two replicas that see the same change, or act on
   * the same request, make the same key, and the store appends it once.
   */
  key: string;
}

/** An entry before the store numbered it. */
export type NewEntry = Omit<HistoryEntry, 'n' | 'schemaVersion'>;

/** The rules of a set, by id, for comparing two sets. */
export type RuleIndex = ReadonlyMap<string, unknown>;

export function ruleIndex(policies: readonly ParsedPolicy[]): RuleIndex {
  const rules = new Map<string, unknown>();
  for (const p of policies) for (const rule of p.document.rules) rules.set(rule.id, rule);
  return rules;
}

/** Rules added, removed and changed (same id, other content) from `before` to `after`. */
export function diffRules(before: RuleIndex, after: RuleIndex): RuleChanges {
  const added: string[] = [];
  const changed: string[] = [];
  for (const [id, rule] of after) {
    if (!before.has(id)) added.push(id);
    else if (!isDeepStrictEqual(before.get(id), rule)) changed.push(id);
  }
  const removed = [...before.keys()].filter((id) => !after.has(id));
  const total = added.length + removed.length + changed.length;
  if (total <= MAX_RULES) return { added, removed, changed };
  const cut = (list: string[]) => list.slice(0, Math.ceil((MAX_RULES * list.length) / total));
  const lists = { added: cut(added), removed: cut(removed), changed: cut(changed) };
  return { ...lists, more: total - lists.added.length - lists.removed.length - lists.changed.length };
}

export interface EntryFacts {
  kind: EntryKind;
  revision: string;
  files: SnapshotFile[];
  /** The set in force for everyone before, if any (its files and rules). */
  previous: { revision: string; files: readonly SnapshotFile[]; rules: RuleIndex } | undefined;
  rules: RuleIndex;
  warnings: number;
  audience: string[] | null;
  by: string;
  at: number;
  key: string;
  replaces?: string;
  note?: string;
  problems?: readonly Problem[];
  signer?: string | null;
  announcement?: Record<string, unknown>;
}

/** An entry from what the daemon knows of an event. */
export function makeEntry(facts: EntryFacts): NewEntry {
  const { previous } = facts;
  return {
    at: new Date(facts.at).toISOString(),
    kind: facts.kind,
    revision: facts.revision,
    previous: previous?.revision ?? null,
    ...(facts.replaces !== undefined ? { replaces: facts.replaces } : {}),
    ...(facts.note !== undefined ? { note: facts.note } : {}),
    audience: facts.audience,
    files: facts.files,
    changed: diffFiles(previous?.files ?? [], facts.files),
    rules: diffRules(previous?.rules ?? new Map(), facts.rules),
    counts: { files: facts.files.length, rules: facts.rules.size, warnings: facts.warnings },
    ...(facts.problems
      ? { problems: facts.problems.slice(0, MAX_PROBLEMS).map((p) => formatProblem(p)), problemCount: facts.problems.length }
      : {}),
    signer: facts.signer ?? null,
    ...(facts.announcement ? { announcement: facts.announcement } : {}),
    by: facts.by,
    key: facts.key,
  };
}

/**
 * The announcement's head: the message as published without the files (their digests are the entry's
 * own `files`, their bytes stored by digest) and without the documents parsed from them.
 */
export function announcementHead(message: { payload: Record<string, unknown> } & Record<string, unknown>): Record<string, unknown> {
  const { files, policies, warnings, skipped, ...payload } = message.payload;
  void files;
  void policies;
  void warnings;
  void skipped;
  return { ...message, payload };
}

/** The entry a reference names: a number (`12`, `#12`) is that entry; 7 to 64 hex digits, the newest entry of the revision they start. */
export function parseReference(ref: string): { n: number } | { revision: string } | undefined {
  const text = ref.trim();
  const number = /^#?(\d{1,6})$/.exec(text);
  if (number) return { n: Number(number[1]) };
  if (/^[0-9a-f]{7,64}$/i.test(text)) return { revision: text.toLowerCase() };
  return undefined;
}
