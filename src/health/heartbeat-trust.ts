import type { Envelope } from '../protocol/envelope.js';
import type { SigningKey } from '../trust/ed25519.js';
import { checkMessageSignature, signMessage, type MessageSignature } from '../trust/signed-message.js';

/**
 * Signed heartbeats: a component that holds its own NKey signs each
 * heartbeat it publishes, and a sentinel told which keys may speak for a
 * component (`[health.trust]`) takes that component's heartbeats only when
 * one of those keys signed them, recently, and each once. Without a
 * signature, any client that may publish on `nachos.system.health` could
 * report the component healthy.
 *
 *     nachos-sentinel heartbeat v1\n<the envelope, less payload.signature and correlationId, RFC 8785>
 *
 * The prefix differs from a policy set's: one key may sign both, and
 * neither signature is ever valid for the other.
 */

export const HEARTBEAT_PREFIX = 'nachos-sentinel heartbeat v1\n';
/** Signature checks per second for one protected component, in bursts of twice that: past it, its heartbeats are dropped unchecked (a flood can delay them, never forge them). */
export const VERIFY_PER_SECOND = 2000;
/** Instances whose last signed heartbeat is remembered (only signed ones get in: real instances). */
const MAX_REMEMBERED = 10_000;

export type TrustVerdict = 'ok' | 'unprotected' | 'unsigned' | 'wrong key' | 'bad signature' | 'stale' | 'replayed' | 'busy';

/** Signs a heartbeat envelope (sets `payload.signature`). */
export function signHeartbeat<E extends Envelope<object>>(envelope: E, key: SigningKey): E {
  return signMessage(envelope as unknown as { payload: { signature?: MessageSignature } }, HEARTBEAT_PREFIX, key) as unknown as E;
}

export interface HeartbeatTrustOptions {
  /** Component -> the public NKeys allowed to speak for it. */
  trust: Readonly<Record<string, readonly string[]>>;
  /** A heartbeat whose timestamp is further from this host's clock than this is refused. */
  maxClockSkewMs: number;
  /** Wall-clock and monotonic milliseconds. */
  wallNow: () => number;
  now: () => number;
}

export class HeartbeatTrust {
  private readonly last = new Map<string, number>();
  private readonly budgets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly options: HeartbeatTrustOptions) {}

  /** Whether any component is protected (nothing to check otherwise). */
  get enabled(): boolean {
    return Object.keys(this.options.trust).length > 0;
  }

  /**
   * Whether to believe a heartbeat (its envelope, decoded) of `component`:
   * `unprotected` when no key is configured for it, `ok` when a trusted key
   * signed it, within the clock skew, and it is newer than the last one of its
   * instance; otherwise why not. Never throws.
   */
  judge(envelope: Envelope<{ component: string; instance?: string }>): TrustVerdict {
    const component = envelope.payload.component;
    const keys = Object.hasOwn(this.options.trust, component) ? this.options.trust[component] : undefined;
    if (!keys) return 'unprotected';
    const signature = (envelope.payload as { signature?: Partial<MessageSignature> }).signature;
    if (!signature || typeof signature !== 'object') return 'unsigned';
    // Cheap refusals first; a check of the signature itself is what a flood could make expensive.
    if (typeof signature.key !== 'string' || !keys.includes(signature.key)) return 'wrong key';
    if (!this.takeBudget(component)) return 'busy';
    const checked = checkMessageSignature(envelope, HEARTBEAT_PREFIX, keys);
    if (!checked.ok) return checked.reason === 'unsigned' ? 'unsigned' : checked.reason === 'wrong key' ? 'wrong key' : 'bad signature';
    const at = Date.parse(envelope.timestamp);
    if (Number.isNaN(at) || Math.abs(this.options.wallNow() - at) > this.options.maxClockSkewMs) return 'stale';
    const key = `${component}\u0000${envelope.payload.instance ?? component}`;
    const previous = this.last.get(key);
    if (previous !== undefined && at <= previous) return 'replayed';
    this.last.delete(key);
    if (this.last.size >= MAX_REMEMBERED) this.last.delete(this.last.keys().next().value as string);
    this.last.set(key, at);
    return 'ok';
  }

  private takeBudget(component: string): boolean {
    const now = this.options.now();
    const budget = this.budgets.get(component) ?? { tokens: 2 * VERIFY_PER_SECOND, at: now };
    budget.tokens = Math.min(2 * VERIFY_PER_SECOND, budget.tokens + ((now - budget.at) / 1000) * VERIFY_PER_SECOND);
    budget.at = now;
    this.budgets.set(component, budget);
    if (budget.tokens < 1) return false;
    budget.tokens--;
    return true;
  }
}
