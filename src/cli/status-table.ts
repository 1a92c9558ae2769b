import type { HealthStatusPayload } from '../health/status-payload.js';
import { probedStatus } from './ask-status.js';
import { printable } from './printable.js';

/** Failing checks listed under the table; the rest are counted. */
const MAX_FAILING_SHOWN = 20;

/**
 * The health view as a table for people: one line per component with its
 * status, live/total instances, the freshest heartbeat and the policy
 * revisions its instances report. Pure: no colours, no terminal handling.
 */
export function statusTable(
  view: HealthStatusPayload,
  options: { component?: string; paint?: (status: string, text: string) => string } = {},
): string {
  // Everything below came over the network: no control character reaches the terminal (only our own colours).
  const paint = options.paint ?? ((_status: string, text: string) => text);
  const lines: string[] = [];
  const subject = options.component ? `component ${printable(options.component)}` : 'nachos';
  const status = printable(probedStatus(view, options.component));
  lines.push(`${subject}: ${paint(status, status)}${options.component ? '' : ` (${printable(String(view.reason))})`}`);
  const took = view.policy.lastConvergence ? `; last convergence took ${formatMs(view.policy.lastConvergence.tookMs)}` : '';
  lines.push(`policy: ${printable(String(view.policy.summary))}${took}`);
  if (view.missing.length > 0 && !options.component) lines.push(`missing: ${printable(view.missing.join(', '))}`);
  lines.push('');

  if (view.rosters) {
    lines.splice(1, 0, `sentinels disagree on the roster: ${printable(view.rosters.sentinels.map((r) => `${r.component}/${r.instance} requires ${r.required.join(',') || 'nothing'}`).join('; '))}`);
  }
  const rows: string[][] = [['COMPONENT', 'ROLE', 'STATUS', 'INSTANCES', 'LAST SEEN', 'POLICY', 'WHY']];
  for (const c of view.components) {
    const live = c.instances.filter((i) => i.status !== 'stale').length;
    const freshest = c.instances.reduce<number | undefined>((m, i) => (m === undefined ? i.lastSeenAgoMs : Math.min(m, i.lastSeenAgoMs)), undefined);
    const revisions = [...new Set(c.instances.map((i) => i.policyRevision).filter((r): r is string => r !== null))].map((r) => r.slice(0, 12));
    rows.push(
      [c.name, c.role, c.status, `${live}/${c.instances.length}`, freshest === undefined ? '-' : `${formatMs(freshest)} ago`, revisions.length === 0 ? '-' : revisions.join(','), c.reason ?? ''].map(
        (cell) => printable(String(cell)),
      ),
    );
  }
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
  rows.forEach((row, i) => {
    // Pad first, then paint: escape codes must not count towards the width.
    const cells = row.map((cell, col) => cell.padEnd(widths[col] ?? 0));
    if (i > 0) cells[2] = paint(row[2] ?? '', cells[2] ?? '');
    lines.push(cells.join('  ').trimEnd());
  });
  // Each failing check with its reason, as the instance said it (the first few).
  const failing = view.components.flatMap((c) =>
    c.instances.flatMap((i) => Object.entries(i.details ?? {}).map(([check, detail]) => `  ${c.name}/${i.instance} ${check}: ${detail.message ?? 'error'}`)),
  );
  if (failing.length > 0) lines.push('', 'failing checks:', ...failing.slice(0, MAX_FAILING_SHOWN).map(printable));
  if (failing.length > MAX_FAILING_SHOWN) lines.push(`  and ${failing.length - MAX_FAILING_SHOWN} more`);
  if (view.truncated) {
    const omitted = view.omitted ? ` (${view.omitted.components} component(s), ${view.omitted.instances} instance(s))` : '';
    lines.push(`(left out to fit the bus message size${omitted}; counts are exact)`);
  }
  return `${lines.join('\n')}\n`;
}

/** A duration for people: 850ms, 12.3s, 4m5s, 2h10m. Rounds before it splits, so never 1m60s. */
export function formatMs(ms: number): string {
  if (ms < 999.5) return `${Math.round(ms)}ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  const minutes = Math.round(ms / 60_000);
  return `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}
