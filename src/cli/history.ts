import type { NatsConnection } from '@nats-io/transport-node';
import { FILE_HEADERS_ONLY, formatPatch, structuredPatch } from 'diff';
import { resolveConfig } from '../config/resolve.js';
import type { SentinelConfig } from '../config/settings.js';
import { UsageError } from '../errors.js';
import type { HistoryEntry } from '../history/entry.js';
import { openHistory } from '../history/open.js';
import { resolveReference, type HistoryStore } from '../history/store.js';
import { EXIT, type CommandLine } from './command-line.js';
import { connectOnce } from './connect-once.js';
import { printable, printableJson } from './printable.js';

/** Entries listed unless `--limit` says otherwise. */
export const DEFAULT_LIMIT = 20;

/**
 * `nachos-sentinel history [--json] [--limit N]`, `history show REVISION`,
 * `history diff A B`: the policy history, read where the configuration says
 * it is kept (the state directory, read beside a running daemon without
 * disturbing it, or the JetStream stream). A REVISION is an entry number
 * (`12`, `#12`) or at least 7 hex digits of a revision. Exit 0; 1 when the
 * history cannot be read or has no such entry.
 */
export async function history(cli: CommandLine, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const config = resolveConfig({ flags: cli.flags, env, cwd });
  const [sub, ...refs] = cli.positionals;
  const limit = readLimit(cli.flags.limit);
  let nc: NatsConnection | undefined;
  let store: HistoryStore | undefined;
  try {
    store = await openStore(config, async () => (nc ??= await connectOnce(config, 'nachos-sentinel-history')));
    if (!store) {
      process.stderr.write('nachos-sentinel history: no history is kept (history.store = "off")\n');
      return EXIT.FAILURE;
    }
    if (sub === undefined) return await list(store, limit, cli.flags.json === true);
    if (sub === 'show') return await show(store, refs[0] as string, cli.flags.json === true);
    return await diff(store, refs[0] as string, refs[1] as string);
  } catch (err) {
    process.stderr.write(`nachos-sentinel history: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  } finally {
    await store?.close();
    await (nc as NatsConnection | undefined)?.close();
  }
}

function openStore(config: SentinelConfig, connection: () => Promise<NatsConnection>): Promise<HistoryStore | undefined> {
  return openHistory(config, { connection, maxPayload: () => 1024 * 1024 }, true);
}

function readLimit(raw: unknown): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--limit takes a whole number of entries, at least 1 (not "${String(raw)}")`);
  return n;
}

async function list(store: HistoryStore, limit: number, json: boolean): Promise<number> {
  const entries = await store.list(limit);
  if (json) {
    process.stdout.write(`${printableJson({ history: store.where, entries }, 2)}\n`);
    return EXIT.OK;
  }
  if (entries.length === 0) {
    process.stdout.write(`no entries in ${store.where} yet\n`);
    return EXIT.OK;
  }
  const rows = entries.map((e) => [
    `#${e.n}`,
    e.at.replace('T', ' ').slice(0, 19),
    e.kind,
    e.revision.slice(0, 12),
    `+${e.changed.added.length} ~${e.changed.modified.length} -${e.changed.removed.length}`,
    `+${e.rules.added.length} -${e.rules.removed.length} ~${e.rules.changed.length}${e.rules.more ? ` (+${e.rules.more})` : ''}`,
    e.signer ? `${e.signer.slice(0, 8)}…` : '-',
    e.audience ? `canary: ${e.audience.join(', ')}` : e.kind === 'rejected' ? '-' : 'everyone',
    remark(e),
  ]);
  const header = ['#', 'when (UTC)', 'what', 'revision', 'files', 'rules', 'signer', 'to', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].map(printable).join('\n')}\n`);
  return EXIT.OK;
}

/** What else a line says: what a rollback replaced, why a canary halted, why a set was refused. */
function remark(e: HistoryEntry): string {
  const parts: string[] = [];
  if (e.replaces) parts.push(`replaces ${e.replaces.slice(0, 12)}`);
  if (e.problems?.[0]) parts.push(`${e.problems[0]}${(e.problemCount ?? 0) > 1 ? ` (and ${(e.problemCount ?? 1) - 1} more)` : ''}`);
  if (e.note) parts.push(e.note);
  return parts.join(': ');
}

async function show(store: HistoryStore, ref: string, json: boolean): Promise<number> {
  const entry = await resolveReference(store, ref);
  const files = await Promise.all(
    entry.files.map(async (f) => {
      const bytes = f.kind === 'policy' ? await store.content(f.sha256) : undefined;
      return { ...f, ...(bytes ? { content: bytes.toString('utf8') } : {}) };
    }),
  );
  if (json) {
    process.stdout.write(`${printableJson({ entry, files }, 2)}\n`);
    return EXIT.OK;
  }
  const head = [
    `entry #${entry.n} · ${entry.kind} · ${entry.at} · recorded by ${entry.by}`,
    `revision ${entry.revision}`,
    ...(entry.previous ? [`previous ${entry.previous}`] : []),
    ...(entry.replaces ? [`replaces ${entry.replaces}`] : []),
    `to ${entry.audience ? `the canaries: ${entry.audience.join(', ')}` : entry.kind === 'rejected' ? 'nobody (rejected)' : 'everyone'}`,
    ...(entry.signer ? [`signed by ${entry.signer}`] : []),
    ...(entry.note ? [`note: ${entry.note}`] : []),
    ...(entry.problems ?? []).map((p) => `problem: ${p}`),
  ];
  const body = files.map((f) => {
    const what = `${f.kind}, ${f.bytes} bytes, sha256 ${f.sha256}`;
    if (f.kind !== 'policy') return `==> ${f.path} (${what}; its contents are never recorded) <==`;
    if (f.content === undefined) return `==> ${f.path} (${what}; no longer stored) <==`;
    return `==> ${f.path} (${what}) <==\n${f.content}${f.content.endsWith('\n') || f.content === '' ? '' : '\n'}`;
  });
  process.stdout.write(`${forTerminal([...head, '', ...body].join('\n'))}\n`);
  return EXIT.OK;
}

/**
 * A unified diff of the files of two recorded sets, `a/` and `b/` as `patch -p1` and `git apply` take
 * it: files added from /dev/null, removed to it.
 */
async function diff(store: HistoryStore, refA: string, refB: string): Promise<number> {
  const [a, b] = [await resolveReference(store, refA), await resolveReference(store, refB)];
  const byPath = (e: HistoryEntry) => new Map(e.files.map((f) => [f.path, f]));
  const [filesA, filesB] = [byPath(a), byPath(b)];
  const paths = [...new Set([...filesA.keys(), ...filesB.keys()])].sort();
  const out: string[] = [`# nachos-sentinel history diff #${a.n} (${a.revision.slice(0, 12)}) #${b.n} (${b.revision.slice(0, 12)})`];
  for (const path of paths) {
    const [fa, fb] = [filesA.get(path), filesB.get(path)];
    if (fa?.sha256 === fb?.sha256) continue;
    if ((fa && fa.kind !== 'policy') || (fb && fb.kind !== 'policy')) {
      out.push(`# ${path}: changed (${fa?.sha256.slice(0, 12) ?? 'none'} -> ${fb?.sha256.slice(0, 12) ?? 'none'}); its contents are never recorded`);
      continue;
    }
    const [textA, textB] = await Promise.all([fa ? text(store, fa.sha256, path) : '', fb ? text(store, fb.sha256, path) : '']);
    const patch = structuredPatch(fa ? `a/${path}` : '/dev/null', fb ? `b/${path}` : '/dev/null', textA, textB, undefined, undefined, { context: 3 });
    out.push(formatPatch(patch, FILE_HEADERS_ONLY).replace(/\n$/, ''));
  }
  process.stdout.write(`${forTerminal(out.join('\n'))}\n`);
  return EXIT.OK;
}

async function text(store: HistoryStore, sha256: string, path: string): Promise<string> {
  const bytes = await store.content(sha256);
  if (!bytes) throw new Error(`${path} (${sha256.slice(0, 12)}) is no longer stored`);
  return bytes.toString('utf8');
}

/**
 * Files' text as it is when it goes to a file or a pipe (a diff must apply byte for byte); on a terminal,
 * control characters but tabs and line ends are shown escaped (a policy file could hold escape sequences).
 */
function forTerminal(text: string): string {
  if (!process.stdout.isTTY) return text;
  return text
    .split('\n')
    .map((line) => printable(line).replaceAll('\\u0009', '\t'))
    .join('\n');
}
