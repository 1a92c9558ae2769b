import { ERROR_CODES, type Problem } from '../errors.js';
import type { Consumer } from './consumer.js';
import { schemaIssues } from '../text/schema-issues.js';
import { pathToPointer, pointerToPath, type Position } from '../text/toml-positions.js';
import { parseByFormat, type Parsed } from './formats.js';
import { changesNoDecision, decisionEffect, nachosParse, nachosReads, nachosRefusals, ruleCountOf, skippedRulesNote, within } from './nachos-compat.js';
import { checkClosedPolicyDocument, checkPolicyDocument, OPERATORS, PolicyDocumentSchema, type Operator, type PolicyDocument } from './schema.js';
import { compareBytes } from './byte-order.js';
import { unknownKeys } from './unknown-keys.js';

/** What a snapshot file holds: policies, or other configuration watched alongside them. */
export type FileKind = 'policy' | 'config';

/** A file as read from disk, before anything is parsed. */
export interface SourceFile {
  /** Path relative to the policy directory, with `/` separators. */
  path: string;
  kind: FileKind;
  content: Buffer;
}

export interface ParsedPolicy {
  path: string;
  document: PolicyDocument;
}

export interface ValidationResult {
  /** The documents of the files without problems, in path order. */
  policies: ParsedPolicy[];
  /** Rules in those documents. */
  ruleCount: number;
  /** Errors: a file with any is invalid. */
  problems: Problem[];
  /** Keys the schema does not know (errors instead, with `strictKeys`). */
  warnings: Problem[];
}

export type { Consumer } from './consumer.js';

export interface ValidateOptions {
  /** Unknown keys, and types that change no decision, are errors rather than warnings. */
  strictKeys?: boolean;
  /** Who reads the files (default nachos): what its loader does is said with every problem. */
  consumer?: Consumer;
  /** A policy file the consumer never reads is an error, not a warning. */
  strictConsumer?: boolean;
  /**
   * An invalid file's rule ids do not count against later files: it is going
   * to be skipped (invalid_files = "skip-file"), and the rest must stand without it.
   */
  skipInvalid?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses and validates a whole set of files: TOML or YAML syntax everywhere, the
 * policy schema in policy files, and what only the whole set can tell (rule
 * ids unique across files). Returns every problem found; never throws.
 */
export function validateSet(files: readonly SourceFile[], options: ValidateOptions = {}): ValidationResult {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const policies: ParsedPolicy[] = [];
  // id -> where it was first defined, for the duplicate check across files.
  const ruleIds = new Map<string, RuleAt>();
  let ruleCount = 0;

  const consumer = options.consumer ?? 'nachos';
  for (const file of [...files].sort((a, b) => compareBytes(a.path, b.path))) {
    const fileProblems: Problem[] = [];
    const fileWarnings: Problem[] = [];
    const parsed = parseFile(file, fileProblems);
    const fileIds = new Map<string, RuleAt>();
    if (parsed !== undefined && file.kind === 'policy') {
      const { value } = parsed;
      const where = (path: (string | number)[]) => parsed.locate(path);
      const valid = checkPolicyDocument.Check(value);
      if (!valid) {
        for (const issue of schemaIssues(checkPolicyDocument, value)) {
          const path = pointerToPath(issue.path);
          fileProblems.push({
            code: ERROR_CODES.POLICY_SCHEMA,
            file: file.path,
            ...where(path),
            ...ruleIdAt(value, path),
            path: issue.path || '/',
            message: withContext(path, issue.message),
          });
        }
      }
      const unknownKeysFound = valid && checkClosedPolicyDocument.Check(value) ? [] : unknownKeys(PolicyDocumentSchema, value);
      for (const unknown of unknownKeysFound) {
        (options.strictKeys ? fileProblems : fileWarnings).push({
          code: ERROR_CODES.POLICY_UNKNOWN_KEY,
          file: file.path,
          ...where(unknown.path),
          ...ruleIdAt(value, unknown.path),
          path: pathToPointer(unknown.path),
          message: withContext(unknown.path, `unknown key "${unknown.key}"${unknown.suggestion ? ` (did you mean "${unknown.suggestion}"?)` : ''}`),
        });
      }

      // What the schema cannot say; checked even in a file with schema errors, so one pass shows everything.
      // An empty YAML document is null; a TOML document is always a table.
      const rules = Array.isArray((value as { rules?: unknown } | null)?.rules) ? (value as { rules: unknown[] }).rules : [];
      rules.forEach((rule, index) => {
        const at = (...rest: (string | number)[]): Position | undefined => where(['rules', index, ...rest]);
        const { id, priority } = (rule ?? {}) as { id?: unknown; priority?: unknown };
        const ruleId = typeof id === 'string' && id !== '' ? id : undefined;
        if (ruleId !== undefined) {
          const first = ruleIds.get(ruleId) ?? fileIds.get(ruleId);
          if (first) {
            const firstLine = first.line();
            const firstAt = firstLine !== undefined ? `${first.file}:${firstLine}` : first.file;
            fileProblems.push({
              code: ERROR_CODES.POLICY_DUPLICATE_ID,
              file: file.path,
              ...at('id'),
              ruleId,
              path: `/rules/${index}/id`,
              message: `rule id "${ruleId}" is already used at ${firstAt}; ids must be unique across the policy directory`,
              ...(first.file !== file.path ? { [DUPLICATE_OF]: { file: first.file, priority: first.priority, priorityHere: priority } } : {}),
            } as Problem);
          } else {
            fileIds.set(ruleId, { file: file.path, line: () => at('id')?.line, priority });
          }
        }
        const conditions = (rule as { conditions?: unknown } | null)?.conditions;
        if (!Array.isArray(conditions)) return;
        conditions.forEach((condition: unknown, c) => {
          const { operator, value: operand } = (condition ?? {}) as { operator?: unknown; value?: unknown };
          if (typeof operator !== 'string' || !(OPERATORS as readonly string[]).includes(operator)) return;
          const message = checkConditionValue(operator as Operator, operand);
          if (message === undefined) return;
          // The schema may already have said it of the same value: said once.
          const pointer = `/rules/${index}/conditions/${c}/value`;
          if (fileProblems.some((p) => p.path === pointer)) return;
          fileProblems.push({
            code: message.startsWith('invalid regular expression') ? ERROR_CODES.POLICY_BAD_REGEX : ERROR_CODES.POLICY_BAD_VALUE,
            file: file.path,
            ...at('conditions', c, 'value'),
            ...(ruleId !== undefined ? { ruleId } : {}),
            path: pointer,
            message: `conditions[${c}].value: ${message}`,
          });
        });
      });
    }
    if (file.kind === 'policy') {
      judgeForConsumer(file, parsed?.value, fileProblems, fileWarnings, { ...options, consumer });
      if (fileProblems.length === 0 && parsed !== undefined) {
        ruleCount += ruleCountOf(parsed.value);
        policies.push({ path: file.path, document: parsed.value as PolicyDocument });
      }
    }
    // A file about to be skipped does not claim its ids; in a set refused whole, the first use is the one named.
    if (fileProblems.length === 0 || !options.skipInvalid) for (const [id, at] of fileIds) ruleIds.set(id, at);
    problems.push(...fileProblems);
    warnings.push(...fileWarnings);
  }
  return { policies, ruleCount, problems, warnings };
}

interface RuleAt {
  file: string;
  line: () => number | undefined;
  priority: unknown;
}

/** Where a duplicate id across files was first used (kept on the problem until it is worded, then removed). */
const DUPLICATE_OF = Symbol('duplicateOf');

/**
 * Says, with the problems of one policy file, what its consumer does with it.
 *
 * For Nachos (the default): a file it never reads (`*.toml`) is a warning,
 * naming its rules that are not in force there (an error with
 * `strictConsumer`). In a file it reads, each problem is one of three kinds,
 * and says which: Nachos' own loader refuses it too (the first such problem
 * says the whole file is skipped, and what that loses); Nachos would load the
 * file, and the problem could change a decision (it stays an error, and says
 * how Nachos' evaluator would take it); or Nachos would load it and it changes
 * no decision (a type the schema asks for where Nachos only stores the value:
 * a warning, an error only with `strictKeys`).
 */
function judgeForConsumer(file: SourceFile, doc: unknown, fileProblems: Problem[], fileWarnings: Problem[], options: ValidateOptions & { consumer: Consumer }): void {
  const reads = options.consumer === 'nachos' && nachosReads(file.path);
  if (options.consumer === 'nachos' && !reads) {
    const count = ruleCountOf(doc);
    (options.strictConsumer ? fileProblems : fileWarnings).push({
      code: ERROR_CODES.POLICY_NOT_READ,
      file: file.path,
      message: `Nachos' loader reads only *.yaml and *.yml: ${count === 0 ? `${file.path} is` : count === 1 ? `the rule in ${file.path} is` : `the ${count} rules in ${file.path} are`} not in force in a Nachos gateway`,
    });
  }
  if (fileProblems.length === 0) return;
  // What Nachos' loader makes of the file: its own parse of the bytes, and its validator's verdict.
  const unparsable = fileProblems.some((p) => p.code === ERROR_CODES.POLICY_SYNTAX);
  const tooDeep = fileProblems.some((p) => p.code === ERROR_CODES.POLICY_SYNTAX && p.message.includes('nested deeper'));
  let nachosDoc: unknown = doc;
  let refused: string[] = [];
  if (reads && unparsable && !tooDeep) {
    const theirs = nachosParse(file.content);
    nachosDoc = theirs?.doc;
    refused = theirs ? nachosRefusals(theirs.doc) : [''];
  } else if (reads && !unparsable) {
    refused = nachosRefusals(doc);
  }
  // Nachos drops a file for anything its validator refuses: then nothing else is said of Nachos' evaluator.
  const nachosDrops = reads && !tooDeep && refused.length > 0;
  const nachosDoc2 = unparsable ? nachosDoc : doc;
  let saidSkipped = false;
  for (const problem of [...fileProblems]) {
    const pointer = problem.path ?? '';
    const duplicateOf = (problem as Problem & { [DUPLICATE_OF]?: { file: string; priority: unknown; priorityHere: unknown } })[DUPLICATE_OF];
    delete (problem as Problem & { [DUPLICATE_OF]?: unknown })[DUPLICATE_OF];
    const refusedHere = nachosDrops && (refused.includes('') || (problem.code !== ERROR_CODES.POLICY_SYNTAX && within(pointer, refused)));
    if (refusedHere) {
      if (!saidSkipped) problem.message += `; ${skippedRulesNote(file.path, unparsable && refused.includes('') && nachosDoc === undefined ? undefined : nachosDoc2)}`;
      saidSkipped = true;
      continue;
    }
    if (problem.code === ERROR_CODES.POLICY_UNKNOWN_KEY) continue;
    if (problem.code !== ERROR_CODES.POLICY_SYNTAX && problem.code !== ERROR_CODES.POLICY_DUPLICATE_ID && changesNoDecision(doc, pointer)) {
      if (reads && !nachosDrops) problem.message += `; Nachos' loader loads ${file.path} as it is, and this changes no decision`;
      if (!options.strictKeys) {
        fileProblems.splice(fileProblems.indexOf(problem), 1);
        fileWarnings.push(problem);
      }
      continue;
    }
    if (!reads || nachosDrops) continue;
    if (duplicateOf) {
      problem.message += `; Nachos' loader would load ${file.path} too and keep both rules: ${whichFirst(duplicateOf, file.path)}`;
      continue;
    }
    if (unparsable) {
      if (!tooDeep) problem.message += `; Nachos' loader would still load ${file.path}: its parser takes what this one refuses`;
      continue;
    }
    const effect = decisionEffect(doc, pointer);
    problem.message += effect ? `; Nachos' loader would load ${file.path}, and ${effect}` : `; Nachos' loader would load ${file.path} as it is; the sentinel refuses it as written`;
  }
  const first = fileProblems[0];
  if (nachosDrops && !saidSkipped && first) first.message += `; ${skippedRulesNote(file.path, nachosDoc2)}`;
}

/** Which of two rules of one id Nachos' evaluator tries first: the higher priority, else the order its directory listing gives. */
function whichFirst(first: { file: string; priority: unknown; priorityHere: unknown }, here: string): string {
  const a = first.priority;
  const b = first.priorityHere;
  if (typeof a === 'number' && typeof b === 'number' && Number.isFinite(a) && Number.isFinite(b) && a !== b) {
    return `its evaluator tries the one of priority ${Math.max(a, b)} (in ${a > b ? first.file : here}) first`;
  }
  return 'at equal priority, which one its evaluator tries first depends on the order the directory lists the files';
}

/** Decodes and parses one file (TOML or YAML); records a problem and returns undefined when it can't. */
function parseFile(file: SourceFile, problems: Problem[]): Extract<Parsed, { ok: true }> | undefined {
  let source: string;
  try {
    source = utf8.decode(file.content);
  } catch {
    problems.push({ code: ERROR_CODES.POLICY_SYNTAX, file: file.path, message: 'not valid UTF-8 text' });
    return undefined;
  }
  const parsed = parseByFormat(file.path, source);
  if (parsed.ok) return parsed;
  problems.push({ code: ERROR_CODES.POLICY_SYNTAX, file: file.path, ...(parsed.line !== undefined ? { line: parsed.line, column: parsed.column } : {}), message: parsed.message });
  return undefined;
}

/** What a condition's value must be for its operator; a message when it is not. */
export function checkConditionValue(operator: Operator, value: unknown): string | undefined {
  switch (operator) {
    case 'in':
    case 'not_in':
      return Array.isArray(value) ? undefined : `operator "${operator}" needs an array of values, got ${typeof value}`;
    case 'matches':
      if (typeof value !== 'string') return `operator "matches" needs a regular expression string, got ${kindOf(value)}`;
      try {
        new RegExp(value);
        return undefined;
      } catch (err) {
        return `invalid regular expression ${JSON.stringify(value)}: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`;
      }
    case 'contains':
    case 'starts_with':
    case 'ends_with':
      return typeof value === 'string' ? undefined : `operator "${operator}" needs a string, got ${kindOf(value)}`;
    case 'equals':
    case 'not_equals':
      return Array.isArray(value) ? `operator "${operator}" compares one value; use "in" for a list` : undefined;
  }
}

function kindOf(value: unknown): string {
  return Array.isArray(value) ? 'an array' : typeof value;
}

/** The id of the rule a path points into, when the rule has a usable one. */
function ruleIdAt(value: unknown, path: (string | number)[]): { ruleId?: string } {
  if (path[0] !== 'rules' || typeof path[1] !== 'number') return {};
  const rules = (value as { rules?: unknown } | null)?.rules;
  const rule = Array.isArray(rules) ? (rules[path[1]] as { id?: unknown } | undefined) : undefined;
  return typeof rule?.id === 'string' && rule.id !== '' ? { ruleId: rule.id } : {};
}

/** Prefixes a message with where it applies; a message about a key names it, so it gets the parent. */
function withContext(path: (string | number)[], message: string): string {
  const context = /^(missing required|unknown) key/.test(message) ? path.slice(0, -1) : path;
  return context.length > 0 ? `${describePath(context)}: ${message}` : message;
}

/** `rules[2].match.action`, the way the value is addressed in prose. */
function describePath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
