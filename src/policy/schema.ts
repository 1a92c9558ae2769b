import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';

/**
 * The schema of a Nachos policy document, as Nachos' policy engine (Salsa)
 * defines it, written here in TOML. It is the one definition: the validator
 * compiles it, and the JSON Schema for editors is generated from it.
 */

function oneOf<const T extends readonly string[]>(values: T, description: string): TUnion<TLiteral<T[number]>[]> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    { description },
  );
}

/** A single value or a list of them: Nachos accepts both in `match`. */
function oneOrMany<T extends ReturnType<typeof oneOf> | ReturnType<typeof Type.String>>(item: T, description: string) {
  return Type.Union([item, Type.Array(item, { minItems: 1 })], { description });
}

export const SECURITY_MODES = ['strict', 'standard', 'permissive'] as const;
export const RESOURCE_TYPES = ['tool', 'channel', 'dm', 'filesystem', 'network', 'llm'] as const;
export const ACTION_TYPES = ['read', 'write', 'execute', 'send', 'receive', 'call'] as const;
export const OPERATORS = ['equals', 'not_equals', 'in', 'not_in', 'contains', 'matches', 'starts_with', 'ends_with'] as const;
export const EFFECTS = ['allow', 'deny'] as const;

export type Operator = (typeof OPERATORS)[number];

const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

/**
 * The document's schema, with or without room for keys it does not name.
 * Nachos' own validator ignores keys it does not know (its policies use
 * `audit`, `dlp_scan` and `require_approval` beside `effect`), so the daemon
 * checks the open form and reports unknown keys apart, as warnings; editors
 * get the closed form, which is what `strict_keys` enforces.
 */
function policyDocumentSchema(additionalProperties: boolean) {
  const ConditionSchema = Type.Object(
    {
      field: Type.String({ minLength: 1, description: 'Request field to test, e.g. "security_mode" or "metadata.path".' }),
      operator: oneOf(OPERATORS, 'How the field is compared with `value`.'),
      value: Type.Union([Scalar, Type.Array(Scalar)], {
        description: 'A string, number or boolean; an array for `in` and `not_in`; a regular expression for `matches`.',
        errorMessage: 'must be a string, number, boolean or an array of them',
      }),
    },
    { additionalProperties },
  );
  const MatchSchema = Type.Object(
    {
      resource: Type.Optional(oneOrMany(oneOf(RESOURCE_TYPES, 'Resource type.'), 'Resource type(s); all when absent.')),
      resourceId: Type.Optional(oneOrMany(Type.String({ minLength: 1 }), 'Specific resource(s), e.g. a tool name; all when absent.')),
      action: Type.Optional(oneOrMany(oneOf(ACTION_TYPES, 'Action.'), 'Action(s); all when absent.')),
    },
    { additionalProperties },
  );
  const RuleSchema = Type.Object(
    {
      id: Type.String({ minLength: 1, maxLength: 200, description: 'Unique across the whole policy directory.' }),
      description: Type.Optional(Type.String()),
      priority: Type.Number({ description: 'Higher priorities are evaluated first.' }),
      match: MatchSchema,
      conditions: Type.Optional(Type.Array(ConditionSchema, { description: 'All must hold for the rule to apply.' })),
      effect: oneOf(EFFECTS, 'What happens when the rule applies.'),
      reason: Type.Optional(Type.String({ description: 'Shown when the rule denies.' })),
    },
    { additionalProperties },
  );
  return Type.Object(
    {
      version: Type.String({ minLength: 1, description: 'Policy schema version, e.g. "1.0".' }),
      metadata: Type.Optional(
        Type.Object(
          {
            name: Type.Optional(Type.String()),
            description: Type.Optional(Type.String()),
            mode: Type.Optional(oneOf(SECURITY_MODES, 'The security mode these rules are written for.')),
          },
          { additionalProperties },
        ),
      ),
      rules: Type.Array(RuleSchema),
    },
    { title: 'Nachos policy document', additionalProperties },
  );
}

/** The closed form: every key named. The JSON Schema for editors, and the reference for unknown keys. */
export const PolicyDocumentSchema = policyDocumentSchema(false);

export type PolicyDocument = Static<typeof PolicyDocumentSchema>;
export type PolicyRule = PolicyDocument['rules'][number];

/** The open form, compiled: what the validator checks (unknown keys are found apart, by `unknownKeys`). */
export const checkPolicyDocument = TypeCompiler.Compile(policyDocumentSchema(true));
/** The closed form, compiled: a document it passes has no unknown key, so most files need no walk. */
export const checkClosedPolicyDocument = TypeCompiler.Compile(PolicyDocumentSchema);
