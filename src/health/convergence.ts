import type { Tracked } from './instances.js';

/**
 * Policy convergence: who runs the revision in force, who lags and for how
 * long, and how long the last convergence took, measured from the moment the
 * revision was announced. Pure: the aggregator hands in the time and the
 * instances.
 */

export interface ConvergenceView {
  /** The revision in force (announced by this sentinel), or null before the first. */
  revision: string | null;
  announcedAt: string | null;
  /** Live instances that report a policy revision (a revision, not null). */
  reporting: number;
  onRevision: number;
  behind: { component: string; instance: string; revision: string; behindForMs: number }[];
  /** Instances on the revision in force whose consumer does not read some of its files: delivered, not enforced. */
  notEnforced: { component: string; instance: string; files: string[] }[];
  /** Every reporting instance on the revision in force, and its consumer reading all of it. */
  converged: boolean;
  /** How long the last completed convergence took, from announcement to the last instance. */
  lastConvergence: { revision: string; tookMs: number; at: string } | null;
  summary: string;
}

/** Whether an instance counts towards convergence: live enough to judge, and reporting a revision it runs. */
function reports(t: Tracked): t is Tracked & { policyRevision: string } {
  return typeof t.policyRevision === 'string' && t.status !== 'stale';
}

export class PolicyConvergence {
  private revision: string | null = null;
  private since = 0;
  private sinceWall = 0;
  private converged = false;
  private lastConvergence: ConvergenceView['lastConvergence'] = null;

  get current(): string | null {
    return this.revision;
  }

  /** The revision now in force, as announced; convergence is measured from `now`. */
  set(revision: string | null, now: number, wallNow: number): void {
    if (revision === this.revision) return;
    this.revision = revision;
    this.since = now;
    this.sinceWall = wallNow;
    this.converged = false;
  }

  /** Records when every live instance that reports a revision reached the one in force (a linear scan: call it per tick). */
  check(instances: Iterable<Tracked>, now: number, wallNow: number): void {
    const { revision } = this;
    if (revision === null || this.converged) return;
    let onRevision = 0;
    for (const t of instances) {
      if (!reports(t)) continue;
      if (t.policyRevision !== revision || (t.policyUnread?.length ?? 0) > 0) return;
      onRevision++;
    }
    // Nobody reporting is not convergence.
    if (onRevision === 0) return;
    this.converged = true;
    this.lastConvergence = { revision, tookMs: Math.round(now - this.since), at: new Date(wallNow).toISOString() };
  }

  /** Live instances that report a revision, and how many run the one in force, all of it read by their consumer (for metrics). */
  counts(instances: Iterable<Tracked>): { reporting: number; onRevision: number } {
    let reporting = 0;
    let onRevision = 0;
    for (const t of instances) {
      if (!reports(t)) continue;
      reporting++;
      // Delivered but partly unread by its consumer is not in force: not counted as on the revision.
      if (t.policyRevision === this.revision && (t.policyUnread?.length ?? 0) === 0) onRevision++;
    }
    return { reporting, onRevision };
  }

  view(instances: Iterable<Tracked>, now: number): ConvergenceView {
    const { revision } = this;
    const reporting = [...instances].filter(reports);
    const behind = reporting
      .filter((t) => t.policyRevision !== revision)
      .map((t) => ({ component: t.component, instance: t.instance, revision: t.policyRevision, behindForMs: Math.round(now - Math.max(this.since, t.firstSeen)) }))
      .sort((a, b) => b.behindForMs - a.behindForMs);
    const onRevision = reporting.length - behind.length;
    const notEnforced = reporting
      .filter((t) => t.policyRevision === revision && (t.policyUnread?.length ?? 0) > 0)
      .map((t) => ({ component: t.component, instance: t.instance, files: t.policyUnread as string[] }));
    let summary: string;
    if (revision === null) summary = 'no policy revision in force yet';
    else if (reporting.length === 0) summary = `no instance reports a policy revision yet (in force: ${revision.slice(0, 12)})`;
    else {
      summary = `${onRevision} of ${reporting.length} on revision ${revision.slice(0, 12)}`;
      if (behind.length > 0) {
        const first = behind.slice(0, 3).map((b) => `${b.component}/${b.instance} behind for ${formatAgo(b.behindForMs)}`);
        summary += `, ${first.join(', ')}${behind.length > 3 ? ` and ${behind.length - 3} more` : ''}`;
      }
      if (notEnforced.length > 0) {
        const files = [...new Set(notEnforced.flatMap((n) => n.files))];
        summary += `; delivered, not enforced: ${files.slice(0, 5).join(', ')}${files.length > 5 ? ` and ${files.length - 5} more` : ''} (${notEnforced
          .slice(0, 3)
          .map((n) => `${n.component}/${n.instance}`)
          .join(', ')}${notEnforced.length > 3 ? ` and ${notEnforced.length - 3} more` : ''})`;
      }
    }
    return {
      revision,
      announcedAt: revision === null ? null : new Date(this.sinceWall).toISOString(),
      reporting: reporting.length,
      onRevision,
      behind,
      notEnforced,
      converged: revision !== null && behind.length === 0 && notEnforced.length === 0 && reporting.length > 0,
      lastConvergence: this.lastConvergence,
      summary,
    };
  }
}

export function formatAgo(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
