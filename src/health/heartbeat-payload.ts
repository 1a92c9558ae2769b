import { createHash } from 'node:crypto';
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';

/**
 * The payload of `nachos.system.health`: a superset of Nachos' HealthCheck
 * (`status`, `component`, `version`, `uptime`, `checks`). What the sentinel
 * adds is optional on input, so plain Nachos heartbeats are understood too.
 */

function oneOf<const T extends readonly string[]>(values: T): TUnion<TLiteral<T[number]>[]> {
  return Type.Union(values.map((v) => Type.Literal(v)));
}

/** What a Nachos HealthCheck says of itself. */
export const NACHOS_STATUSES = ['healthy', 'degraded', 'unhealthy'] as const;
export type NachosStatus = (typeof NACHOS_STATUSES)[number];

/**
 * What a heartbeat may say: Nachos' three, and `unknown`, which a sidecar
 * says when it has no evidence of its neighbour (no check, or none answered
 * yet). An instance that says `unknown` is alive but vouches for nothing.
 */
export const REPORTED_STATUSES = [...NACHOS_STATUSES, 'unknown'] as const;
export type ReportedStatus = (typeof REPORTED_STATUSES)[number];

export const LIFECYCLE_STATES = ['starting', 'running', 'stopping'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

/** Bounds that keep one hostile heartbeat from costing more than a few hundred bytes to track. */
export const MAX_NAME = 64;
export const MAX_INSTANCE = 128;
export const MAX_CHECKS = 64;
export const MAX_VERSION = 64;
/** The longest error text a heartbeat's policy facts carry. */
export const MAX_POLICY_ERROR = 300;
/** The longest heartbeat interval a sender may declare. */
export const MAX_INTERVAL_MS = 3_600_000; // 1 h

export const HeartbeatSchema = Type.Object(
  {
    schemaVersion: Type.Optional(Type.Integer({ minimum: 1 })),
    status: oneOf(REPORTED_STATUSES),
    component: Type.String({ minLength: 1, maxLength: MAX_NAME, pattern: '^[A-Za-z0-9_.:-]+$' }),
    version: Type.Optional(Type.String({ maxLength: MAX_VERSION })),
    /** Seconds since the process started. */
    uptime: Type.Optional(Type.Number({ minimum: 0 })),
    checks: Type.Optional(
      Type.Record(Type.String({ maxLength: MAX_NAME }), oneOf(['ok', 'error'] as const), { maxProperties: MAX_CHECKS }),
    ),
    /** Unique per process start; absent in plain Nachos heartbeats (then the component is one instance). */
    instance: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_INSTANCE, pattern: '^[A-Za-z0-9_.:/-]+$' })),
    seq: Type.Optional(Type.Integer({ minimum: 0 })),
    /** The sender's heartbeat interval: silence is judged against it. */
    intervalMs: Type.Optional(Type.Integer({ minimum: 10, maximum: MAX_INTERVAL_MS })),
    state: Type.Optional(oneOf(LIFECYCLE_STATES)),
    policy: Type.Optional(
      Type.Object({
        revision: Type.Union([Type.String({ maxLength: 128 }), Type.Null()]),
        /** Files of the set on disk that the sender's consumer never reads (a sidecar: `*.toml` beside a Nachos gateway). */
        unread: Type.Optional(Type.Array(Type.String({ maxLength: 255 }), { maxItems: 64 })),
        /** When the set was delivered (a sidecar) or applied (ISO 8601). */
        deliveredAt: Type.Optional(Type.String({ maxLength: 40 })),
        /** A newer set that could not be taken (a fetch or a write failed, or it was refused for good), and why. */
        failure: Type.Optional(Type.Object({ revision: Type.String({ maxLength: 128 }), error: Type.String({ maxLength: MAX_POLICY_ERROR }) })),
        /** The reload hook's result (POST, command) for the set delivered. */
        hook: Type.Optional(
          Type.Object({
            revision: Type.String({ maxLength: 128 }),
            state: oneOf(['pending', 'ok', 'failed'] as const),
            error: Type.Optional(Type.String({ maxLength: MAX_POLICY_ERROR })),
          }),
        ),
      }),
    ),
    /** Optional details per check; the aggregator keeps the messages of failing ones. */
    details: Type.Optional(Type.Unknown()),
    /** Sent by aggregating sentinels: the roster they judge by, so that replicas that disagree are found. */
    roster: Type.Optional(
      Type.Object({
        digest: Type.String({ minLength: 1, maxLength: 64 }),
        required: Type.Array(Type.String({ maxLength: MAX_NAME }), { maxItems: 64 }),
        optional: Type.Array(Type.String({ maxLength: MAX_NAME }), { maxItems: 64 }),
      }),
    ),
  },
  { additionalProperties: true },
);

export type Heartbeat = Static<typeof HeartbeatSchema>;

/** What a heartbeat says of the policy set its sender runs, besides its revision. */
export type PolicyFacts = Omit<NonNullable<Heartbeat['policy']>, 'revision'>;

/** Details of one check, as the sentinel publishes them. */
export interface CheckDetail {
  required: boolean;
  message?: string;
  latencyMs?: number;
}

/**
 * A sidecar's own version and uptime, in `details.sidecar` of a heartbeat
 * whose `version` and `uptime` are its neighbour's. Shaped as a check's
 * detail (there is no `sidecar` check, so it never counts as a failure), and
 * said in words too for those who read only messages.
 */
export interface SidecarDetail extends CheckDetail {
  required: false;
  message: string;
  version: string;
  /** Seconds since the sidecar started. */
  uptime: number;
}

/** What the sentinel publishes: the superset with everything filled in. */
export interface SentinelHeartbeat extends Heartbeat {
  schemaVersion: 1;
  version: string;
  uptime: number;
  checks: Record<string, 'ok' | 'error'>;
  instance: string;
  seq: number;
  intervalMs: number;
  state: LifecycleState;
  policy: PolicyFacts & { revision: string | null };
  details: Record<string, CheckDetail>;
  roster?: Roster;
}

/** A roster as heartbeats carry it. */
export interface Roster {
  /** The first 16 hex digits of the SHA-256 of `{"optional":[...],"required":[...]}`, names sorted. */
  digest: string;
  required: string[];
  optional: string[];
}

/** The roster a sentinel judges by, with its digest: the same lists always give the same digest. */
export function rosterOf(required: readonly string[], optional: readonly string[]): Roster {
  const req = [...new Set(required)].sort();
  const opt = [...new Set(optional)].filter((name) => !req.includes(name)).sort();
  const digest = createHash('sha256').update(JSON.stringify({ optional: opt, required: req })).digest('hex').slice(0, 16);
  return { digest, required: req, optional: opt };
}
