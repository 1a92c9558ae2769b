import type { TSchema } from '@sinclair/typebox';
import { configFileSchema } from '../config/settings.js';
import { UsageError } from '../errors.js';
import { PolicyDocumentSchema } from '../policy/schema.js';
import { EXIT, type CommandLine } from './command-line.js';

/** The JSON Schemas this project publishes, generated from the schemas the code validates with. */
export const SCHEMAS = {
  policy: () => PolicyDocumentSchema,
  config: () => configFileSchema(),
} as const;

/**
 * A TypeBox schema as plain JSON Schema (draft 7): TypeBox's own markers are
 * symbols and vanish in JSON; `errorMessage`, which only this project's error
 * wording reads, is dropped so that strict validators accept the result.
 */
export function jsonSchema(schema: TSchema): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema, (key, value: unknown) => (key === 'errorMessage' ? undefined : value))) as Record<string, unknown>;
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...plain };
}

/** `nachos-sentinel schema policy|config`: prints the JSON Schema, for editors and CI. */
export function schema(cli: CommandLine): number {
  const name = cli.positionals[0];
  if (name !== 'policy' && name !== 'config') {
    throw new UsageError(`schema takes "policy" or "config", got ${name === undefined ? 'nothing' : `"${name}"`}`);
  }
  process.stdout.write(`${JSON.stringify(jsonSchema(SCHEMAS[name]()), null, 2)}\n`);
  return EXIT.OK;
}
