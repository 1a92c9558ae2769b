import { Kind, type TSchema } from '@sinclair/typebox';
import { closest } from '../did-you-mean.js';

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
 * and no deeper. Values of the wrong shape are the validator's business, not this.
 */
export function unknownKeys(schema: TSchema, value: unknown, path: (string | number)[] = [], out: UnknownKey[] = []): UnknownKey[] {
  if (out.length >= MAX_UNKNOWN_KEYS) return out;
  switch (schema[Kind]) {
    case 'Object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return out;
      const properties = (schema.properties ?? {}) as Record<string, TSchema>;
      for (const [key, child] of Object.entries(value)) {
        const known = properties[key];
        if (known) {
          unknownKeys(known, child, [...path, key], out);
        } else if (out.length < MAX_UNKNOWN_KEYS) {
          const suggestion = closest(key, Object.keys(properties));
          out.push({ path: [...path, key], key, ...(suggestion ? { suggestion } : {}) });
        }
      }
      return out;
    }
    case 'Array':
      if (Array.isArray(value)) value.forEach((item, i) => unknownKeys(schema.items as TSchema, item, [...path, i], out));
      return out;
    case 'Union': {
      // The member of the value's shape (a policy's unions hold at most one object or array member each).
      const shape = Array.isArray(value) ? 'Array' : value !== null && typeof value === 'object' ? 'Object' : undefined;
      const member = (schema.anyOf as TSchema[]).find((m) => m[Kind] === shape);
      return member ? unknownKeys(member, value, path, out) : out;
    }
    default:
      return out;
  }
}
