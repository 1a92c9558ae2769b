import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { parseDuration } from '../config/duration.js';
import { resolveConfig } from '../config/resolve.js';
import { ConfigError, UsageError } from '../errors.js';
import type { LedgerLine, RolloutView } from '../health/rollout-ledger.js';
import { envelopeType, SUBJECTS } from '../protocol/topics.js';
import type { OperatorReply } from '../rollout/operator-requests.js';
import { askStatus, shownServers, StatusRequestError } from './ask-status.js';
import { EXIT, type CommandLine } from './command-line.js';
import { COMMAND_TIMEOUT, connectOnce } from './connect-once.js';
import { printable, printableJson } from './printable.js';

/** How often `rollout status --wait` asks again. */
export const WAIT_POLL = 500; // ms
/** An operator request may wait for a history read (a rollback rebuilds a set) and a JetStream write. */
const OPERATOR_TIMEOUT = 10_000; // ms

/**
 * `nachos-sentinel rollback REVISION [--reason TEXT]` (or `--release`):
 * asks the running central sentinels, on the operator-only subject, to put
 * an earlier set back in force (or to return to the directory's). Exit 0 when
 * one did, 1 when refused (saying why) or when none answered.
 */
export async function rollback(cli: CommandLine, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const config = resolveConfig({ flags: cli.flags, env, cwd });
  const release = cli.flags.release === true;
  const revision = cli.positionals[0];
  if (release && revision !== undefined) throw new UsageError('rollback takes a REVISION or --release, not both');
  if (!release && revision === undefined) throw new UsageError('rollback takes a REVISION (an entry number from `nachos-sentinel history`, or 7+ hex digits of a revision), or --release');
  const reason = typeof cli.flags.reason === 'string' ? cli.flags.reason : undefined;
  return operatorRequest(config, 'rollback', SUBJECTS.policyRollback, { ...(release ? { release: true } : { revision }), ...(reason ? { reason } : {}) });
}

/**
 * `nachos-sentinel rollout status [--wait] [--timeout DURATION] [--json]`,
 * `rollout promote`, `rollout abort`. Status asks a central sentinel for the
 * rollout of the set in force and exits 0 when it is complete (every
 * instance that reports a policy revision runs its set, healthy), 1 when it
 * failed (a delivery refused or failed, a reload hook failed, an instance
 * unhealthy after delivery, a halted canary), 3 when it is still in progress
 * (without --wait: now; with it, when --timeout passed first).
 */
export async function rollout(cli: CommandLine, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const config = resolveConfig({ flags: cli.flags, env, cwd });
  const [sub] = cli.positionals;
  const reason = typeof cli.flags.reason === 'string' ? cli.flags.reason : undefined;
  if (sub === 'promote') return operatorRequest(config, 'rollout promote', SUBJECTS.policyPromote, reason ? { reason } : {});
  if (sub === 'abort') return operatorRequest(config, 'rollout abort', SUBJECTS.policyAbort, reason ? { reason } : {});
  const wait = cli.flags.wait === true;
  const timeoutMs = typeof cli.flags.timeout === 'string' ? readTimeout(cli.flags.timeout) : wait ? Number.POSITIVE_INFINITY : 0;
  const json = cli.flags.json === true;
  let nc: NatsConnection;
  try {
    nc = await connectOnce(config, 'nachos-sentinel-rollout');
  } catch (err) {
    process.stderr.write(`nachos-sentinel rollout status: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }
  const deadline = Date.now() + timeoutMs;
  const tty = process.stdout.isTTY === true && !json;
  let shown = '';
  try {
    for (;;) {
      let view: RolloutView | undefined;
      try {
        view = (await askStatus(nc, { timeoutMs: COMMAND_TIMEOUT, servers: config.servers, id: randomUUID() })).rollout;
      } catch (err) {
        if (!(err instanceof StatusRequestError) || !wait || Date.now() >= deadline) throw err;
      }
      if (view === undefined && !wait) throw new StatusRequestError('the sentinel that answered reports no rollout (an older version?)');
      const done = view !== undefined && view.verdict !== 'progressing';
      if (done || !wait || Date.now() >= deadline) {
        if (view === undefined) throw new StatusRequestError(`no sentinel answered on ${SUBJECTS.healthStatus} at ${shownServers(config.servers)}`);
        process.stdout.write(json ? `${printableJson(view, 2)}\n` : ledgerText(view));
        if (view.verdict === 'complete') return EXIT.OK;
        if (view.verdict === 'failed') return EXIT.FAILURE;
        if (wait) process.stderr.write(`nachos-sentinel rollout status: not complete after ${cli.flags.timeout as string}\n`);
        return EXIT.PENDING;
      }
      // On a terminal, each change of the summary is shown as it happens.
      if (tty && view && view.summary !== shown) {
        shown = view.summary;
        process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${printable(view.summary)}\n`);
      }
      // The last question is asked at the deadline.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(WAIT_POLL, deadline - Date.now()))));
    }
  } catch (err) {
    process.stderr.write(`nachos-sentinel rollout status: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  } finally {
    await nc.close();
  }
}

function readTimeout(text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new ConfigError('--timeout', (err as Error).message);
  }
}

/** The ledger for people: the summary, then one line per instance (the failed and pending first). */
export function ledgerText(view: RolloutView): string {
  const lines = [view.summary];
  if (view.revision) lines.push(`in force: ${view.revision}${view.source && view.source !== view.revision ? ` (the directory holds ${view.source})` : ''}`);
  if (view.canary) lines.push(`canary: ${view.canary.revision} to ${view.canary.audience.join(', ')}, ${view.canary.phase}${view.canary.note ? `: ${view.canary.note}` : ''}`);
  if (view.instances.length > 0) {
    const rows = view.instances.map((l: LedgerLine) => [
      `${l.component}/${l.instance}${l.canary ? ' (canary)' : ''}`,
      l.state,
      l.revision?.slice(0, 12) ?? 'none',
      l.deliveredAt?.replace('T', ' ').slice(0, 19) ?? '-',
      l.hook ?? '-',
      l.status,
      l.why ?? '',
    ]);
    const header = ['instance', 'state', 'revision', 'delivered (UTC)', 'hook', 'health', ''];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd();
    lines.push('', line(header), ...rows.map(line));
  }
  if (view.omitted) lines.push(`and ${view.omitted} more instance(s), done`);
  return `${lines.map(printable).join('\n')}\n`;
}

/** Sends one operator request; prints the answer (the first central sentinel's), or why it was refused. */
async function operatorRequest(config: ReturnType<typeof resolveConfig>, command: string, subject: string, payload: object): Promise<number> {
  let nc: NatsConnection;
  try {
    nc = await connectOnce(config, `nachos-sentinel-${command.replace(' ', '-')}`);
  } catch (err) {
    process.stderr.write(`nachos-sentinel ${command}: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }
  const request = { id: randomUUID(), timestamp: new Date().toISOString(), source: 'nachos-sentinel-cli', type: envelopeType(subject), payload };
  try {
    const reply = await nc.request(subject, JSON.stringify(request), { timeout: OPERATOR_TIMEOUT });
    const error = reply.headers?.get('Nats-Service-Error');
    if (error) {
      process.stderr.write(`nachos-sentinel ${command}: refused (${reply.headers?.get('Nats-Service-Error-Code') ?? '?'}): ${printable(error)}\n`);
      return EXIT.FAILURE;
    }
    const answer = reply.json<{ payload: OperatorReply }>().payload;
    process.stdout.write(`${printable(answer.message)} (by ${printable(answer.by)})\n`);
    return EXIT.OK;
  } catch (err) {
    const text = (err as Error).message;
    const why = /no responders/i.test(text)
      ? `no central sentinel answered on ${subject} at ${shownServers(config.servers)} (is one running?)`
      : /permission/i.test(text)
        ? `the bus refused: ${text} (only the operator user may publish on ${subject}; see deploy/nats-server.conf)`
        : text;
    process.stderr.write(`nachos-sentinel ${command}: ${why}\n`);
    return EXIT.FAILURE;
  } finally {
    await nc.close();
  }
}
