import { consumerReads } from './consumer.js';
import { parseAsNachos } from './formats.js';
import { ACTION_TYPES, EFFECTS, OPERATORS, RESOURCE_TYPES } from './schema.js';

/**
 * What Nachos' own gateway does with a policy file, so that every problem can
 * say it truly. Its loader (packages/core/gateway/src/salsa/policy/loader.ts)
 * reads only `*.yaml` and `*.yml` (hidden names too), parses each with the
 * `yaml` package's defaults after reading it as UTF-8 (invalid bytes become
 * U+FFFD), and drops a whole file that fails to parse or that its validator
 * (validator.ts) refuses, loading the rest. The validator's checks are
 * `nachosRefusals` below, one for one: it ignores keys it does not know and
 * never looks at a condition value's type. Its evaluator (evaluator.ts) sorts
 * every rule of every file by priority, highest first, and takes the first
 * that matches, comparing condition values as `conditionEffect` describes.
 */

/** Whether Nachos' loader reads this file at all. */
export function nachosReads(path: string): boolean {
  return consumerReads('nachos', path);
}

/** Nachos' loader's reading of a file: its document, or undefined when it cannot parse it (and drops the file). */
export function nachosParse(bytes: Uint8Array): { doc: unknown } | undefined {
  return parseAsNachos(new TextDecoder('utf-8').decode(bytes));
}

/** JSON pointers of everything Nachos' validator refuses in `doc` (empty: it loads the file). */
export function nachosRefusals(doc: unknown): string[] {
  if (!doc || typeof doc !== 'object') return [''];
  const refused: string[] = [];
  const { version, rules } = doc as { version?: unknown; rules?: unknown };
  if (!version) refused.push('/version');
  if (!rules || !Array.isArray(rules)) return [...refused, '/rules'];
  const ids = new Set<string>();
  rules.forEach((rule: unknown, i) => {
    const at = `/rules/${i}`;
    const r = (typeof rule === 'object' && rule !== null ? rule : {}) as Record<string, unknown>;
    if (!r.id || typeof r.id !== 'string') refused.push(`${at}/id`);
    if (typeof r.priority !== 'number') refused.push(`${at}/priority`);
    if (!r.match || typeof r.match !== 'object') {
      refused.push(`${at}/match`);
    } else {
      const m = r.match as Record<string, unknown>;
      if (m.resource && !oneOrMany(m.resource).every((v) => inList(RESOURCE_TYPES, v))) refused.push(`${at}/match/resource`);
      if (m.action && !oneOrMany(m.action).every((v) => inList(ACTION_TYPES, v))) refused.push(`${at}/match/action`);
      const resourceId = m.resourceId;
      if (resourceId !== undefined && typeof resourceId !== 'string' && !(Array.isArray(resourceId) && resourceId.every((v) => typeof v === 'string'))) {
        refused.push(`${at}/match/resourceId`);
      }
    }
    if (!r.effect || !inList(EFFECTS, r.effect)) refused.push(`${at}/effect`);
    if (r.conditions) {
      if (!Array.isArray(r.conditions)) {
        refused.push(`${at}/conditions`);
      } else {
        r.conditions.forEach((condition: unknown, c) => {
          const cond = (typeof condition === 'object' && condition !== null ? condition : {}) as Record<string, unknown>;
          if (!cond.field || typeof cond.field !== 'string') refused.push(`${at}/conditions/${c}/field`);
          if (!cond.operator || !inList(OPERATORS, cond.operator)) refused.push(`${at}/conditions/${c}/operator`);
          if (cond.value === undefined) refused.push(`${at}/conditions/${c}/value`);
        });
      }
    }
    if (typeof r.id === 'string' && r.id) {
      if (ids.has(r.id)) refused.push(`${at}/id`);
      ids.add(r.id);
    }
  });
  return refused;
}

/** Whether a problem at `pointer` lies within one of the `refused` pointers. */
export function within(pointer: string, refused: readonly string[]): boolean {
  return refused.some((r) => pointer === r || r === '' || pointer.startsWith(`${r}/`));
}

/**
 * What Nachos' evaluator makes of a condition whose value is not what the
 * schema says, read from its source: `never` when the condition can never
 * hold (so its rule never applies), `always` when it always holds, with why;
 * undefined when the value works as written.
 */
export function conditionEffect(operator: unknown, value: unknown): string | undefined {
  const compared = Array.isArray(value) ? 'a list' : value === null ? 'null' : typeof value === 'object' ? 'an object' : undefined;
  switch (operator) {
    case 'equals':
      if (compared === 'a list' || compared === 'an object') return `its evaluator compares with ===, so ${compared} never equals a field: the condition never holds, and the rule never applies`;
      if (compared === 'null') return 'its evaluator compares with ===: the condition holds only for a field whose value is null (a field a request lacks is undefined, not null)';
      return undefined;
    case 'not_equals':
      if (compared === 'a list' || compared === 'an object') return `its evaluator compares with !==, so ${compared} differs from every field: the condition always holds`;
      return undefined;
    case 'in':
    case 'not_in':
      if (!Array.isArray(value)) return `its evaluator takes "${operator}" as false unless the value is a list: the condition never holds, and the rule never applies`;
      if (value.some((v) => typeof v !== 'string')) {
        return `its evaluator compares the field, as a string, with each entry: the entries that are not strings (${value
          .filter((v) => typeof v !== 'string')
          .slice(0, 3)
          .map((v) => JSON.stringify(v))
          .join(', ')}) never match${operator === 'not_in' ? ', so they exclude nothing' : ''}`;
      }
      return undefined;
    case 'contains':
    case 'starts_with':
    case 'ends_with':
    case 'matches':
      if (typeof value !== 'string') return `its evaluator takes "${operator}" as false unless the value is a string: the condition never holds, and the rule never applies`;
      if (operator === 'matches') {
        try {
          new RegExp(value);
        } catch {
          return 'its evaluator catches the invalid pattern and takes it as no match: the condition never holds, and the rule never applies';
        }
      }
      return undefined;
    default:
      return undefined;
  }
}

/**
 * Whether a problem at `pointer` changes no decision in Nachos' evaluator: a
 * type the schema asks for where Nachos only stores or ignores the value
 * (`version`, `metadata`, a rule's `description` or `reason`, an id longer
 * than the schema allows), `conditions: null` (none), `match` written as an
 * empty list (Nachos reads it as `{}`: every request). Such problems are
 * warnings (errors with strict keys); everything else the sentinel refuses
 * could change a decision.
 */
export function changesNoDecision(doc: unknown, pointer: string): boolean {
  const top = doc as { version?: unknown; metadata?: unknown } | null;
  // Present, of another type: a value Nachos only stores. Absent, it is the schema's contract.
  if (pointer === '/version') return Boolean(top?.version);
  if (pointer === '/metadata' || pointer.startsWith('/metadata/')) return top?.metadata !== undefined;
  const m = /^\/rules\/(\d+)\/(description|reason|id|conditions|match)$/.exec(pointer);
  if (!m) return false;
  const rule = ((doc as { rules?: unknown[] } | null)?.rules ?? [])[Number(m[1])] as Record<string, unknown> | undefined;
  const value = rule?.[m[2] as string];
  switch (m[2]) {
    case 'description':
    case 'reason':
      return value !== undefined;
    case 'id':
      return typeof value === 'string' && value !== '';
    case 'conditions':
      return value === null;
    case 'match':
      return Array.isArray(value) && value.length === 0;
    default:
      return false;
  }
}

/**
 * Why a problem Nachos would load anyway matters, in its evaluator's terms,
 * where that can be said; undefined otherwise.
 */
export function decisionEffect(doc: unknown, pointer: string): string | undefined {
  const rules = (doc as { rules?: unknown[] } | null)?.rules ?? [];
  const cond = /^\/rules\/(\d+)\/conditions\/(\d+)\/value$/.exec(pointer);
  if (cond) {
    const c = (((rules[Number(cond[1])] as { conditions?: unknown[] } | undefined)?.conditions ?? [])[Number(cond[2])] ?? {}) as { operator?: unknown; value?: unknown };
    return conditionEffect(c.operator, c.value);
  }
  const match = /^\/rules\/(\d+)\/match$/.exec(pointer);
  if (match && Array.isArray((rules[Number(match[1])] as { match?: unknown } | undefined)?.match)) {
    return 'its evaluator reads a list here as a match that names nothing, so the rule applies to every request, whatever the list holds';
  }
  const resourceId = /^\/rules\/(\d+)\/match\/resourceId$/.exec(pointer);
  if (resourceId) {
    const v = ((rules[Number(resourceId[1])] as { match?: { resourceId?: unknown } } | undefined)?.match ?? {}).resourceId;
    if (Array.isArray(v) && v.length === 0) return 'its evaluator finds no resource id in an empty list: the rule never applies';
    if (v === '') return 'its evaluator takes an empty resource id as none: the rule applies to every resource';
  }
  const priority = /^\/rules\/(\d+)\/priority$/.exec(pointer);
  if (priority && typeof (rules[Number(priority[1])] as { priority?: unknown } | undefined)?.priority === 'number') {
    return 'its evaluator sorts rules by priority, and a priority that is not a finite number leaves their order undefined';
  }
  return undefined;
}

/**
 * What Nachos would lose by skipping the file: "its 14 rules (10 allow, 4
 * deny) would not be in force".
 */
export function skippedRulesNote(file: string, doc: unknown): string {
  if (doc === undefined) return `Nachos' own loader cannot parse it either and skips the whole of ${file}`;
  return `Nachos' own loader refuses this too and skips the whole of ${file}: ${rulesOf(doc)}`;
}

/** "its 3 rules (2 allow, 1 deny) would not be in force", or "it holds no rules". */
function rulesOf(doc: unknown): string {
  const rules = (doc as { rules?: unknown } | null)?.rules;
  const list = Array.isArray(rules) ? rules : [];
  const count = (effect: string) => list.filter((r) => (r as { effect?: unknown } | null)?.effect === effect).length;
  const allow = count('allow');
  const deny = count('deny');
  const parts = [allow > 0 ? `${allow} allow` : '', deny > 0 ? `${deny} deny` : '', list.length - allow - deny > 0 ? `${list.length - allow - deny} other` : ''].filter(Boolean);
  return list.length === 0 ? 'it holds no rules' : `its ${list.length} rule${list.length === 1 ? '' : 's'} (${parts.join(', ')}) would not be in force`;
}

/** How many rules a document holds, whatever else it is. */
export function ruleCountOf(doc: unknown): number {
  const rules = (doc as { rules?: unknown } | null)?.rules;
  return Array.isArray(rules) ? rules.length : 0;
}

function oneOrMany(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

function inList(list: readonly string[], value: unknown): boolean {
  return typeof value === 'string' && list.includes(value);
}
