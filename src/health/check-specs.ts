import { Type, type Static } from '@sinclair/typebox';

/**
 * Checks of the container the sentinel sits beside, as written in the config
 * file (`[[health.checks]]`). Pure: the schema and its parsed form; the
 * runner in checks.ts does the I/O.
 */

/** Names the sentinel uses for its own checks; configured checks cannot take them. */
export const OWN_CHECKS = ['bus', 'policy', 'policy_files', 'announce', 'event_loop'] as const;

export const DEFAULT_CHECK_TIMEOUT = 2000; // 2 s

const Common = {
  name: Type.String({ pattern: '^[a-z0-9_-]{1,48}$', description: 'Shown in the heartbeat `checks`.' }),
  required: Type.Optional(Type.Boolean({ description: 'A failing required check makes the status unhealthy, an optional one degraded (default true).' })),
  timeout: Type.Optional(Type.String({ description: 'Cut the check off after this long (default 2s).' })),
};

export const CheckSpecSchema = Type.Union(
  [
    Type.Object(
      {
        ...Common,
        type: Type.Literal('http'),
        url: Type.String({ pattern: '^https?://', description: 'GET this URL.' }),
        expect_status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, description: 'Expected status (default 200).' })),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        ...Common,
        type: Type.Literal('tcp'),
        address: Type.String({ pattern: '^.+:\\d{1,5}$', description: 'host:port that must accept a connection.' }),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        ...Common,
        type: Type.Literal('command'),
        command: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String(), { minItems: 1 })], {
          description: 'An argv array (run directly) or a string (run by /bin/sh -c).',
        }),
        expect_exit: Type.Optional(Type.Integer({ minimum: 0, maximum: 255, description: 'Expected exit code (default 0).' })),
      },
      { additionalProperties: false },
    ),
  ],
  { errorMessage: 'must be a check table with type "http" (url), "tcp" (address) or "command" (command)' },
);

export type CheckSpecInput = Static<typeof CheckSpecSchema>;

/** A check, resolved: defaults filled, durations in milliseconds. */
export type CheckSpec =
  | { name: string; required: boolean; timeoutMs: number; type: 'http'; url: string; expectStatus: number }
  | { name: string; required: boolean; timeoutMs: number; type: 'tcp'; host: string; port: number }
  | { name: string; required: boolean; timeoutMs: number; type: 'command'; argv: string[]; expectExit: number };
