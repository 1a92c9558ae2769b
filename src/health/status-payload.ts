import type { RolloutView } from './rollout-ledger.js';
import type { StatusView } from './aggregator.js';

/**
 * The reply on `nachos.system.health.status`, as it travels: the view, who
 * answered, and what was taken in. A wire type shared by the sentinel that
 * answers and the probe and `status` that ask.
 */

export interface IngestCounters {
  received: number;
  accepted: number;
  left: number;
  /** A `stopping` heartbeat of an instance not tracked (never heard, or already gone): nothing to do. */
  ignored: number;
  /**
   * Refused unread or invalid, by why; `impostor`: valid, but under this sentinel's own name with an id it did
   * not publish; `signature`: of a component protected by `[health.trust]`, without a fresh signature of its keys.
   */
  rejected: Record<'oversized' | 'encoding' | 'json' | 'envelope' | 'payload' | 'impostor' | 'signature', number>;
  /** Valid, but there was no room (every place held by a live instance of the roster heard twice). */
  refused: number;
  /** Instances dropped to make room for newer ones (the oldest silent or stale, else one heard only once, else the least recently heard outside the roster). */
  evicted: number;
}

export interface HealthStatusPayload extends StatusView {
  schemaVersion: 1;
  generatedAt: string;
  sentinel: { component: string; instance: string; connected: boolean };
  roster: { required: string[]; optional: string[] };
  ingest: IngestCounters;
  /** The rollout of the set in force: who runs what, and whether it is complete (`rollout status`). */
  rollout?: RolloutView;
  /** Left out to fit the server's max_payload; the counts (`tracked`, `policy`, the statuses) stay exact. */
  truncated?: boolean;
  omitted?: { components: number; instances: number };
}

/**
 * A reply that fits `maxBytes` whatever is tracked: every instance when it
 * fits; else fewer instances per component (100, 10, then none); else fewer
 * components, the roster always first. `size` says how many bytes a payload
 * takes once wrapped.
 */
export function fitStatus(payload: HealthStatusPayload, maxBytes: number, size: (p: HealthStatusPayload) => number): HealthStatusPayload {
  if (size(payload) <= maxBytes) return payload;
  const instances = (p: HealthStatusPayload) => p.components.reduce((n, c) => n + c.instances.length, 0);
  const total = { components: payload.components.length, instances: instances(payload) };
  const cut = (components: HealthStatusPayload['components'], behind: number): HealthStatusPayload => {
    const p: HealthStatusPayload = {
      ...payload,
      components,
      policy: { ...payload.policy, behind: payload.policy.behind.slice(0, behind) },
      ...(payload.rollout ? { rollout: cutLedger(payload.rollout, behind) } : {}),
      truncated: true,
    };
    p.omitted = { components: total.components - components.length, instances: total.instances - instances(p) };
    return p;
  };
  for (const keep of [100, 10, 0]) {
    const p = cut(payload.components.map((c) => ({ ...c, instances: c.instances.slice(0, keep) })), keep);
    if (size(p) <= maxBytes) return p;
  }
  // Still too big: the roster, then as many of the others as fit (halving until they do).
  const bare = payload.components.map((c) => ({ ...c, instances: [] }));
  const roster = bare.filter((c) => c.role !== 'observed');
  const others = bare.filter((c) => c.role === 'observed');
  for (let n = others.length; ; n = Math.floor(n / 2)) {
    const p = cut([...roster, ...others.slice(0, n)], 0);
    if (size(p) <= maxBytes || n === 0) return p;
  }
}

/** The ledger with at most `keep` lines (the failed and pending first); the verdict stays. */
function cutLedger(rollout: RolloutView, keep: number): RolloutView {
  if (rollout.instances.length <= keep) return rollout;
  return { ...rollout, instances: rollout.instances.slice(0, keep), omitted: (rollout.omitted ?? 0) + rollout.instances.length - keep };
}
