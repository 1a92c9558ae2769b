import { Kind, type TSchema } from '@sinclair/typebox';
import { closest } from '../text/did-you-mean.js';

/** A key the schema does not name, where it was found. */
export interface UnknownKey {
  path: (string | number)[];
  key: string;
  /** A known key within edit distance 2, for a typo. */
  suggestion?: string;
}

/** Enough to show every typo a person makes; a hostile file cannot make the list grow without bound. */
export const MAX_UNKNOWN_KEYS = 200;

/**
 * Every key of `value` that `schema` does not name, walking only where the
 * schema goes (objects, arrays, unions), so the walk is as deep as the schema
 * and no deeper. Values of the wrong shape are the validator's business, not
 * this. It runs on every file of every read, so it allocates only for what it
 * finds: one path, kept as a stack and copied at a hit.
 */
export function unknownKeys(schema: TSchema, value: unknown): UnknownKey[] {
  const out: UnknownKey[] = [];
  walk(schema, value, [], out);
  return out;
}

function walk(schema: TSchema, value: unknown, path: (string | number)[], out: UnknownKey[]): void {
  if (out.length >= MAX_UNKNOWN_KEYS || value === null || typeof value !== 'object') return;
  switch (schema[Kind]) {
    case 'Object': {
      if (Array.isArray(value)) return;
      const properties = (schema.properties ?? {}) as Record<string, TSchema>;
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        const known = Object.hasOwn(properties, key) ? properties[key] : undefined;
        path.push(key);
        if (known) {
          walk(known, (value as Record<string, unknown>)[key], path, out);
        } else if (out.length < MAX_UNKNOWN_KEYS) {
          const suggestion = closest(key, Object.keys(properties));
          out.push({ path: [...path], key, ...(suggestion ? { suggestion } : {}) });
        }
        path.pop();
      }
      return;
    }
    case 'Array':
      if (!Array.isArray(value)) return;
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        walk(schema.items as TSchema, value[i], path, out);
        path.pop();
      }
      return;
    case 'Union': {
      // The member of the value's shape (a policy's unions hold at most one object or array member each).
      const shape = Array.isArray(value) ? 'Array' : 'Object';
      const member = (schema.anyOf as TSchema[]).find((m) => m[Kind] === shape);
      if (member) walk(member, value, path, out);
      return;
    }
    default:
      return;
  }
}
