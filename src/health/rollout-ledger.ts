import type { InstanceStatus, Tracked } from './instances.js';
import { formatAgo } from './convergence.js';
import { inAudience } from '../protocol/audience.js';

/**
 * The rollout ledger: for the set in force, each instance that reports a
 * policy revision, what it should run, what it runs, since when, its reload
 * hook's result and its health; and the verdict `rollout status` exits with.
 * Pure: the rollout hands in its state and the tracked instances.
 */

export type Verdict = 'complete' | 'progressing' | 'failed';

/** One instance's line. */
export interface LedgerLine {
  component: string;
  instance: string;
  /** The revision it should run: the canary's for a canary while one runs, else the one in force. */
  target: string;
  /** What it reports (on disk for a sidecar, applied for a subscriber). */
  revision: string | null;
  /** `done`: on its target, the hook (if any) succeeded, healthy; `failed`: see `why`; else `pending`. */
  state: 'done' | 'pending' | 'failed';
  deliveredAt: string | null;
  hook: 'pending' | 'ok' | 'failed' | null;
  status: InstanceStatus;
  canary: boolean;
  why?: string;
}

export interface CanaryState {
  revision: string;
  previous: string;
  audience: string[];
  phase: 'delivering' | 'baking' | 'halted';
  startedAt: string;
  bakeMs: number;
  /** When the bake ends (baking only). */
  bakeEndsAt?: string;
  /** Canary instances live now, and those of them that delivered the set. */
  members: number;
  delivered: number;
  /** Why it halted, or was aborted. */
  note?: string;
}

export interface RolledBack {
  revision: string;
  replaces: string;
  /** The directory's revision, which the rollback stands in for. */
  source: string;
  at: string;
  by: string;
  note?: string;
}

export interface RolloutView {
  /** The revision in force for everyone (null before the first). */
  revision: string | null;
  /** The policy directory's revision. */
  source: string | null;
  rolledBack: RolledBack | null;
  canary: CanaryState | null;
  verdict: Verdict;
  summary: string;
  /** Instances that report a policy revision, of the components that count (the required ones, or all when none is). */
  instances: LedgerLine[];
  /** Lines left out (a reply has a size limit); the verdict counts them all. */
  omitted?: number;
}

export interface LedgerInput {
  revision: string | null;
  source: string | null;
  rolledBack: RolledBack | null;
  canary: CanaryState | null;
  /** The components whose instances count: the required ones (empty: every component). */
  required: readonly string[];
  instances: Iterable<Tracked>;
  /** Wall-clock milliseconds: how long ago a set was delivered. */
  wallNow: number;
}

/** Lines listed at most; the verdict counts every instance. */
const MAX_LINES = 500;

export function rolloutView(input: LedgerInput): RolloutView {
  const { revision, canary, rolledBack, source } = input;
  const counts = new Set(input.required);
  const lines: LedgerLine[] = [];
  let failed = 0;
  let pending = 0;
  let done = 0;
  let total = 0;
  for (const t of input.instances) {
    if (typeof t.policyRevision !== 'string' || revision === null) continue;
    if (counts.size > 0 && !counts.has(t.component)) continue;
    const member = canary !== null && canary.phase !== 'halted' && inAudience(canary.audience, t);
    const target = member ? canary.revision : revision;
    // A silent instance that never took its target is gone, not failing.
    if (t.status === 'stale' && t.policyRevision !== target) continue;
    const line = judge(t, target, member, input.wallNow);
    total++;
    if (line.state === 'failed') failed++;
    else if (line.state === 'pending') pending++;
    else done++;
    if (lines.length < MAX_LINES || line.state !== 'done') lines.push(line);
  }
  // The failed first, then the pending: what an operator looks at.
  const order = { failed: 0, pending: 1, done: 2 } as const;
  lines.sort((a, b) => order[a.state] - order[b.state] || a.component.localeCompare(b.component) || a.instance.localeCompare(b.instance));
  const shown = lines.slice(0, MAX_LINES);

  let verdict: Verdict;
  if (revision === null) verdict = 'progressing';
  else if (canary?.phase === 'halted' || failed > 0) verdict = 'failed';
  else if (canary !== null || pending > 0) verdict = 'progressing';
  else verdict = 'complete';

  const view: RolloutView = {
    revision,
    source,
    rolledBack,
    canary,
    verdict,
    summary: summarize({ revision, source, rolledBack, canary, verdict, failed, pending, done, total, first: shown.find((l) => l.state !== 'done') }),
    instances: shown,
  };
  if (shown.length < total) view.omitted = total - shown.length;
  return view;
}

function judge(t: Tracked, target: string, canary: boolean, wallNow: number): LedgerLine {
  const facts = t.policyFacts;
  const hook = facts?.hook?.revision === target ? facts.hook.state : null;
  const on = t.policyRevision === target;
  const line: LedgerLine = {
    component: t.component,
    instance: t.instance,
    target,
    revision: t.policyRevision ?? null,
    state: 'pending',
    deliveredAt: on ? (facts?.deliveredAt ?? null) : null,
    hook,
    status: t.status,
    canary,
  };
  const fail = (why: string): LedgerLine => ({ ...line, state: 'failed', why });
  if (facts?.failure?.revision === target) return fail(`could not take ${target.slice(0, 12)}: ${facts.failure.error}`);
  if (!on) return { ...line, why: `on ${t.policyRevision?.slice(0, 12) ?? 'none'}, waiting for ${target.slice(0, 12)}` };
  if (hook === 'failed') return fail(`the reload hook failed: ${facts?.hook?.error ?? 'failed'}`);
  if (t.status === 'unhealthy' || t.status === 'stale') {
    const delivered = facts?.deliveredAt ? Date.parse(facts.deliveredAt) : Number.NaN;
    const since = Number.isNaN(delivered) ? ' after delivery' : ` ${formatAgo(Math.max(0, Math.round(wallNow - delivered)))} after delivery`;
    return fail(`${t.status}${since}${failingCheck(t)}`);
  }
  if ((t.policyUnread?.length ?? 0) > 0) return { ...line, why: `delivered, not read by its consumer: ${(t.policyUnread ?? []).slice(0, 3).join(', ')}` };
  if (hook === 'pending') return { ...line, why: 'the reload hook has not succeeded yet' };
  if (t.status !== 'healthy' && t.status !== 'unknown') return { ...line, why: t.status };
  return { ...line, state: 'done' };
}

/** `: llm error`: the first failing check's message, as the instance published it. */
export function failingCheck(t: Tracked): string {
  for (const [name, result] of Object.entries(t.checks)) {
    if (result !== 'error') continue;
    const message = t.details?.[name]?.message;
    return `: ${message ?? `${name} failing`}`;
  }
  return '';
}

function summarize(s: {
  revision: string | null;
  source: string | null;
  rolledBack: RolledBack | null;
  canary: CanaryState | null;
  verdict: Verdict;
  failed: number;
  pending: number;
  done: number;
  total: number;
  first: LedgerLine | undefined;
}): string {
  const short = (r: string | null) => (r === null ? 'none' : r.slice(0, 12));
  if (s.revision === null) return 'no policy set in force yet';
  const parts: string[] = [];
  if (s.canary?.phase === 'halted') parts.push(`halted: ${s.canary.note ?? `canary of ${short(s.canary.revision)} halted`}; everyone on ${short(s.revision)}`);
  else if (s.canary) {
    const stage = s.canary.phase === 'baking' ? `baking until ${s.canary.bakeEndsAt?.slice(11, 19) ?? '?'}` : 'delivering';
    parts.push(`canary: ${short(s.canary.revision)} to ${s.canary.audience.join(', ')} (${s.canary.delivered} of ${s.canary.members} delivered), ${stage}; everyone else on ${short(s.revision)}`);
  }
  if (s.rolledBack) parts.push(`rolled back to ${short(s.rolledBack.revision)}; the source directory holds ${short(s.rolledBack.source)}`);
  const count = `${s.done} of ${s.total} instance(s) done`;
  if (s.verdict === 'complete') parts.push(`complete: ${count} on ${short(s.revision)}`);
  else if (s.first) parts.push(`${s.verdict}: ${count}; ${s.first.component}/${s.first.instance}: ${s.first.why ?? s.first.state}`);
  else parts.push(`${s.verdict}: ${count}`);
  return parts.join('; ');
}
