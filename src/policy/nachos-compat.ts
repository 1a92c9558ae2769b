import { ACTION_TYPES, EFFECTS, OPERATORS, RESOURCE_TYPES } from './schema.js';

/**
 * What Nachos' own gateway would do with a policy file, so that a problem can
 * say it. Its loader (packages/core/gateway/src/salsa/policy/loader.ts) reads
 * only `*.yaml` and `*.yml`, and drops a whole file that fails to parse or
 * that its validator (validator.ts, beside it) refuses, loading the rest. The
 * checks below are that validator's, one for one, read from its source: it
 * ignores keys it does not know and never looks at a condition value's type.
 */

/** Whether Nachos' loader reads this file at all. */
export function nachosReads(path: string): boolean {
  return /\.ya?ml$/.test(path);
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

/**
 * What Nachos would lose by skipping the file: "its 14 rules (10 allow, 4
 * deny) would not be in force".
 */
export function skippedRulesNote(file: string, doc: unknown): string {
  if (doc === undefined) return `Nachos' own loader skips the whole of ${file} too`;
  const rules = (doc as { rules?: unknown } | null)?.rules;
  const list = Array.isArray(rules) ? rules : [];
  const count = (effect: string) => list.filter((r) => (r as { effect?: unknown } | null)?.effect === effect).length;
  const allow = count('allow');
  const deny = count('deny');
  const parts = [allow > 0 ? `${allow} allow` : '', deny > 0 ? `${deny} deny` : '', list.length - allow - deny > 0 ? `${list.length - allow - deny} other` : ''].filter(Boolean);
  const rulesText = list.length === 0 ? 'it holds no rules' : `its ${list.length} rule${list.length === 1 ? '' : 's'} (${parts.join(', ')}) would not be in force`;
  return `Nachos' own loader refuses this too and skips the whole of ${file}: ${rulesText}`;
}

function oneOrMany(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

function inList(list: readonly string[], value: unknown): boolean {
  return typeof value === 'string' && list.includes(value);
}
