import { ERROR_CODES, type Problem } from '../errors.js';
import { schemaIssues } from '../text/schema-issues.js';
import { pathToPointer, pointerToPath, type Position } from '../text/toml-positions.js';
import { parseByFormat, type Parsed } from './formats.js';
import { nachosReads, nachosRefusals, skippedRulesNote } from './nachos-compat.js';
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

export interface ValidateOptions {
  /** Unknown keys are errors rather than warnings. */
  strictKeys?: boolean;
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
  const ruleIds = new Map<string, { file: string; line: () => number | undefined }>();
  let ruleCount = 0;

  for (const file of [...files].sort((a, b) => compareBytes(a.path, b.path))) {
    const fileProblems: Problem[] = [];
    const parsed = parseFile(file, fileProblems);
    const fileIds = new Map<string, { file: string; line: () => number | undefined }>();
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
        (options.strictKeys ? fileProblems : warnings).push({
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
        const id = (rule as { id?: unknown } | null)?.id;
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
            });
          } else {
            fileIds.set(ruleId, { file: file.path, line: () => at('id')?.line });
          }
        }
        const conditions = (rule as { conditions?: unknown } | null)?.conditions;
        if (!Array.isArray(conditions)) return;
        conditions.forEach((condition: unknown, c) => {
          const { operator, value: operand } = (condition ?? {}) as { operator?: unknown; value?: unknown };
          if (typeof operator !== 'string' || !(OPERATORS as readonly string[]).includes(operator)) return;
          const message = checkConditionValue(operator as Operator, operand);
          if (message === undefined) return;
          fileProblems.push({
            code: message.startsWith('invalid regular expression') ? ERROR_CODES.POLICY_BAD_REGEX : ERROR_CODES.POLICY_BAD_VALUE,
            file: file.path,
            ...at('conditions', c, 'value'),
            ...(ruleId !== undefined ? { ruleId } : {}),
            path: `/rules/${index}/conditions/${c}/value`,
            message: `conditions[${c}].value: ${message}`,
          });
        });
      });
      if (fileProblems.length === 0 && valid) {
        ruleCount += value.rules.length;
        policies.push({ path: file.path, document: value });
      }
    }
    if (fileProblems.length > 0 && nachosReads(file.path)) noteWhatNachosDoes(file.path, parsed?.value, fileProblems);
    // A file about to be skipped does not claim its ids; in a set refused whole, the first use is the one named.
    if (fileProblems.length === 0 || !options.skipInvalid) for (const [id, at] of fileIds) ruleIds.set(id, at);
    problems.push(...fileProblems);
  }
  return { policies, ruleCount, problems, warnings };
}

/**
 * Says, on the problem Nachos' own validator would refuse too (the first
 * one, once per file), that Nachos' loader skips the whole file and what it
 * would then lose. A file that does not even parse is skipped by Nachos too.
 */
function noteWhatNachosDoes(file: string, doc: unknown, fileProblems: Problem[]): void {
  const refused = doc === undefined ? [''] : nachosRefusals(doc);
  if (refused.length === 0) return;
  const target =
    fileProblems.find((p) => refused.some((r) => p.path !== undefined && (p.path === r || (r !== '' && p.path.startsWith(`${r}/`))))) ??
    fileProblems.find((p) => p.code !== ERROR_CODES.POLICY_DUPLICATE_ID) ??
    fileProblems[0];
  if (target) target.message += `; ${skippedRulesNote(file, doc)}`;
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
