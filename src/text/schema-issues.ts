import { Kind, type TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { closest } from './did-you-mean.js';

/** One schema violation, worded for the person who wrote the file. */
export interface SchemaIssue {
  /** JSON pointer to the offending value, e.g. `/rules/2/effect`. */
  path: string;
  message: string;
}

/** At most this many issues per document: one typo should not bury the rest. */
const MAX_ISSUES = 50;

/**
 * Every violation of `check` in `value`, one per path, in words a person
 * understands ("unknown key", "must be one of ...") rather than the schema
 * library's ("Unexpected property", "Expected union value").
 */
export function schemaIssues<T extends TSchema>(check: TypeCheck<T>, value: unknown): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const error of check.Errors(value)) {
    const issue = error.type === ValueErrorType.Union ? (insideUnion(error) ?? { path: error.path, message: describe(error) }) : { path: error.path, message: describe(error) };
    if (seen.has(issue.path)) continue;
    seen.add(issue.path);
    issues.push(issue);
    if (issues.length >= MAX_ISSUES) break;
  }
  return issues;
}

/**
 * A value that matches none of a union's members, said from the member it
 * was meant to be: an array against the array member (`servers[0]: must be a
 * string, got 1`, not "got an array"), a table against the member its `type`
 * names (`url` is missing), or the `type` itself when it names none.
 */
function insideUnion(error: ValueError): SchemaIssue | undefined {
  const members = (error.schema.anyOf ?? []) as TSchema[];
  const value = error.value as unknown;
  let member: TSchema | undefined;
  if (Array.isArray(value)) {
    member = members.find((m) => m[Kind] === 'Array');
  } else if (value !== null && typeof value === 'object') {
    const objects = members.filter((m) => m[Kind] === 'Object');
    const typed = objects.filter((m) => (m.properties as Record<string, TSchema> | undefined)?.type?.const !== undefined);
    if (typed.length > 0) {
      const kind = (value as { type?: unknown }).type;
      if (kind === undefined) return { path: `${error.path}/type`, message: `missing required key "type"` };
      member = typed.find((m) => (m.properties as Record<string, TSchema>).type?.const === kind);
      if (!member) {
        const kinds = typed.map((m) => JSON.stringify((m.properties as Record<string, TSchema>).type?.const));
        return { path: `${error.path}/type`, message: `must be one of ${kinds.join(', ')}, got ${show(kind)}` };
      }
    } else {
      member = objects[0];
    }
  }
  if (!member) return undefined;
  const inner = Value.Errors(member, value).First();
  return inner ? { path: `${error.path}${inner.path}`, message: describe(inner) } : undefined;
}

function describe(error: ValueError): string {
  const key = error.path.split('/').pop() ?? '';
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const suggestion = closest(key, knownKeys(error));
      return `unknown key "${key}"${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
    }
    case ValueErrorType.ObjectRequiredProperty:
      return `missing required key "${key}"`;
    case ValueErrorType.Union: {
      const choices = literalChoices(error.schema);
      if (choices) return `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${show(error.value)}`;
      return `${expected(error.schema)}, got ${show(error.value)}`;
    }
    case ValueErrorType.StringPattern:
    case ValueErrorType.StringFormat:
      return `${expected(error.schema)}, got ${show(error.value)}`;
    case ValueErrorType.StringMinLength:
      return error.schema.minLength === 1 ? 'must not be empty' : error.message.toLowerCase();
    case ValueErrorType.String:
    case ValueErrorType.Number:
    case ValueErrorType.Integer:
    case ValueErrorType.Boolean:
    case ValueErrorType.Array:
    case ValueErrorType.Object:
    case ValueErrorType.Literal:
      return `${expected(error.schema)}, got ${show(error.value)}`;
    default:
      return error.message.charAt(0).toLowerCase() + error.message.slice(1);
  }
}

/** "must be a duration such as ..." from the schema's description, else from its type. */
function expected(schema: TSchema): string {
  if (typeof schema.errorMessage === 'string') return schema.errorMessage;
  const choices = literalChoices(schema);
  if (choices) return `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`;
  if (schema.anyOf) return `must be ${(schema.anyOf as TSchema[]).map(typeName).join(' or ')}`;
  return `must be ${typeName(schema)}`;
}

function typeName(schema: TSchema): string {
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const choices = literalChoices(schema);
  if (choices) return `one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`;
  switch (schema[Kind]) {
    case 'String':
      return 'a string';
    case 'Number':
      return 'a number';
    case 'Integer':
      return 'an integer';
    case 'Boolean':
      return 'true or false';
    case 'Array': {
      const items = schema.items as TSchema | undefined;
      return items && literalChoices(items) ? 'an array of them' : 'an array';
    }
    case 'Object':
      return 'a table';
    default:
      return String(schema.type ?? schema[Kind]).toLowerCase();
  }
}

function literalChoices(schema: TSchema): unknown[] | undefined {
  const options = schema.anyOf as TSchema[] | undefined;
  if (!options || !options.every((o) => o.const !== undefined)) return undefined;
  return options.map((o) => o.const);
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object') return 'a table';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function knownKeys(error: ValueError): string[] {
  // The error's schema is the object's for additional properties.
  const properties = error.schema.properties as Record<string, unknown> | undefined;
  return properties ? Object.keys(properties) : [];
}
