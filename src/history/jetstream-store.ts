import { createHash } from 'node:crypto';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { messageOf } from '../errors.js';
import { sha256Hex } from '../policy/revision.js';
import { ENTRY_SCHEMA_VERSION, type HistoryEntry, type NewEntry } from './entry.js';
import { DEFAULT_KEEP } from './local-store.js';
import { alreadyRecorded, FileRefs, HistoryError, type HistoryStore, type IndexedEntry, type RolloutRecord } from './store.js';

/** Every history subject starts with this, then the deployment's token. */
export const HISTORY_SUBJECT_ROOT = 'nachos.system.history';
/** JetStream's "wrong last sequence" error: another writer took that entry number first. */
const WRONG_LAST_SEQUENCE = 10071;
/** Room left in each stored part for headers. */
const PART_HEADROOM = 4096;
const PARTS_HEADER = 'Sentinel-Parts';
/** How long a stream request may take (a cluster electing a leader takes a few seconds). */
const API_TIMEOUT = 5000; // ms

/** The subject token of a deployment: its name when it is one token, else a digest of it ("" is `_`). */
export function deploymentToken(deployment: string): string {
  if (deployment === '') return '_';
  if (/^[A-Za-z0-9_-]{1,64}$/.test(deployment)) return deployment;
  return `x${createHash('sha256').update(deployment).digest('hex').slice(0, 16)}`;
}

/** The subjects of one deployment's history. */
export function historySubjects(deployment: string) {
  const p = `${HISTORY_SUBJECT_ROOT}.${deploymentToken(deployment)}`;
  return {
    all: `${HISTORY_SUBJECT_ROOT}.>`,
    entries: `${p}.entry.>`,
    entry: (n: number) => `${p}.entry.${n}`,
    blob: (sha256: string, part: number) => `${p}.blob.${sha256}.${part}`,
    blobParts: (sha256: string) => `${p}.blob.${sha256}.>`,
    rollout: `${p}.rollout`,
    current: `${p}.current`,
  };
}

export interface JetStreamStoreOptions {
  /** Resolves with the connection once there is one (the store waits for the bus). */
  connection: () => Promise<NatsConnection>;
  stream: string;
  deployment: string;
  /** Stream replicas when this store makes the stream. */
  replicas?: number;
  keep?: number;
  /** Make nothing, write nothing (the `history` command, a sidecar). */
  readOnly?: boolean;
  /** The server's max_payload: files larger are stored in parts. */
  maxPayload?: () => number;
}

/**
 * The policy history in a JetStream stream, shared by every central sentinel
 * of a deployment, which is what lets it outgrow one machine (R3 in a cluster).
 * One message per subject (`max_msgs_per_subject = 1`), so every subject is a
 * slot:
 *
 *     nachos.system.history.<deployment>.entry.<n>         entry n
 *     nachos.system.history.<deployment>.blob.<sha256>.<i> a file's bytes (part i; part 0 says how many)
 *     nachos.system.history.<deployment>.rollout           a rollback in force, a halted canary
 *     nachos.system.history.<deployment>.current           the newest statement for everyone, as published
 *
 * An entry is appended with `Nats-Expected-Last-Subject-Sequence: 0` on its
 * slot: of two replicas that append at once, one takes entry n and the other
 * is refused, reads entry n, and either finds its own event there (appended
 * once: the same key) or takes n + 1. The history never forks. A file is
 * stored under its digest, once, however many sets use it; files larger than
 * one message are stored in parts beside it (one stream, one set of
 * permissions, one replica setting: no object store bucket beside it).
 */
export class JetStreamHistoryStore implements HistoryStore {
  readonly where: string;
  private readonly subjects: ReturnType<typeof historySubjects>;
  private indexed: IndexedEntry[] = [];
  private readonly refs = new FileRefs();
  private opened: Promise<{ js: JetStreamClient; jsm: JetStreamManager }> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly keep: number;

  constructor(private readonly options: JetStreamStoreOptions) {
    this.where = `JetStream stream ${options.stream}`;
    this.subjects = historySubjects(options.deployment);
    this.keep = Math.max(1, options.keep ?? DEFAULT_KEEP);
  }

  /** Connects, makes the stream if it is missing (writers), and reads every entry. */
  private api(): Promise<{ js: JetStreamClient; jsm: JetStreamManager }> {
    this.opened ??= this.open().catch((err: unknown) => {
      this.opened = undefined;
      throw err instanceof HistoryError ? err : new HistoryError(`${this.where}: ${messageOf(err)}`);
    });
    return this.opened;
  }

  private async open(): Promise<{ js: JetStreamClient; jsm: JetStreamManager }> {
    const nc = await this.options.connection();
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: API_TIMEOUT });
    const js = jetstream(nc, { checkAPI: false, timeout: API_TIMEOUT });
    const { stream, replicas = 1, readOnly } = this.options;
    if (!readOnly) {
      const info = await jsm.streams.info(stream).catch((err: unknown) => {
        if (/stream not found/i.test(messageOf(err))) return undefined;
        throw err;
      });
      if (!info) {
        await jsm.streams.add({ name: stream, subjects: [this.subjects.all], max_msgs_per_subject: 1, num_replicas: replicas, description: 'nachos-sentinel policy history' });
      } else if (info.config.max_msgs_per_subject !== 1 || !info.config.subjects?.includes(this.subjects.all)) {
        throw new HistoryError(`stream ${stream} exists but is not a policy history (it must take ${this.subjects.all} with max_msgs_per_subject = 1); name another with [history] stream`);
      }
    }
    const api = { js, jsm };
    await this.readAll(api);
    return api;
  }

  /** Reads every entry, oldest first (an ordered consumer over the entry slots). */
  private async readAll({ js, jsm }: { js: JetStreamClient; jsm: JetStreamManager }): Promise<void> {
    const info = await jsm.streams.info(this.options.stream, { subjects_filter: this.subjects.entries });
    const slots = Object.keys(info.state.subjects ?? {}).length;
    const entries: HistoryEntry[] = [];
    if (slots > 0) {
      const consumer = await js.consumers.get(this.options.stream, { filter_subjects: this.subjects.entries });
      try {
        const messages = await consumer.fetch({ max_messages: slots, expires: API_TIMEOUT });
        for await (const m of messages) {
          const entry = parseEntry(m.data);
          if (entry) entries.push(entry);
          if (m.info.pending === 0) break;
        }
      } finally {
        await consumer.delete().catch(() => undefined);
      }
    }
    entries.sort((a, b) => a.n - b.n);
    this.indexed = [];
    this.refs.clear();
    for (const entry of entries) this.take(entry);
  }

  private take(entry: HistoryEntry): void {
    if (this.indexed.some((e) => e.n === entry.n)) return;
    this.indexed.push({ n: entry.n, kind: entry.kind, revision: entry.revision, audience: entry.audience, key: entry.key });
    this.indexed.sort((a, b) => a.n - b.n);
    this.refs.add(entry);
  }

  /** Entries other replicas appended since we last looked: read forward from our newest until a slot is empty. */
  private async catchUp(jsm: JetStreamManager): Promise<void> {
    for (let n = (this.indexed.at(-1)?.n ?? 0) + 1; ; n++) {
      const entry = await this.read(jsm, n);
      if (!entry) return;
      this.take(entry);
    }
  }

  private async read(jsm: JetStreamManager, n: number): Promise<HistoryEntry | undefined> {
    const m = await jsm.streams.getMessage(this.options.stream, { last_by_subj: this.subjects.entry(n) });
    return m ? parseEntry(m.data) : undefined;
  }

  append(entry: NewEntry, contents: ReadonlyMap<string, Buffer>): Promise<{ entry: HistoryEntry; appended: boolean }> {
    if (this.options.readOnly) return Promise.reject(new HistoryError(`${this.where} was opened to read`));
    const run = this.queue.then(() => this.appendNow(entry, contents));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async appendNow(entry: NewEntry, contents: ReadonlyMap<string, Buffer>): Promise<{ entry: HistoryEntry; appended: boolean }> {
    const { js, jsm } = await this.api();
    let stored = false;
    // No read first: the slot after our newest is tried at once, and a refusal says another replica was
    // there first (its entry is read then: the history is judged again, and the next slot tried).
    for (;;) {
      const n = (this.indexed.at(-1)?.n ?? 0) + 1;
      const recorded = alreadyRecorded(this.indexed, entry);
      if (recorded) {
        const existing = await this.read(jsm, recorded.n);
        if (existing) return { entry: existing, appended: false };
      }
      if (!stored) {
        for (const [sha256, bytes] of contents) await this.storeFile(js, jsm, sha256, bytes);
        stored = true;
      }
      const entryAt: HistoryEntry = { schemaVersion: ENTRY_SCHEMA_VERSION, n, ...entry };
      try {
        await js.publish(this.subjects.entry(n), JSON.stringify(entryAt), { expect: { lastSubjectSequence: 0 } });
        this.take(entryAt);
        await this.prune(jsm);
        return { entry: entryAt, appended: true };
      } catch (err) {
        if (!wrongLastSequence(err)) throw err;
        // Another replica took entry n first: read it, and what else was appended meanwhile.
        await this.catchUp(jsm);
      }
    }
  }

  /** Stores a file's bytes under its digest, unless they are there: the parts after the first, then part 0, which says how many. */
  private async storeFile(js: JetStreamClient, jsm: JetStreamManager, sha256: string, bytes: Buffer): Promise<void> {
    if (this.refs.has(sha256)) return;
    if (sha256Hex(bytes) !== sha256) throw new HistoryError(`the bytes given for ${sha256.slice(0, 12)} do not hash to it`);
    const partBytes = Math.max(1024, (this.options.maxPayload?.() ?? 1024 * 1024) - PART_HEADROOM);
    const parts = Math.max(1, Math.ceil(bytes.byteLength / partBytes));
    // A file in one part is published at once (a refusal says it is stored); one in several is looked for first.
    if (parts > 1 && (await jsm.streams.getMessage(this.options.stream, { last_by_subj: this.subjects.blob(sha256, 0) }))) return;
    for (let i = parts - 1; i >= 0; i--) {
      const chunk = bytes.subarray(i * partBytes, (i + 1) * partBytes);
      const h = natsHeaders();
      if (i === 0) h.set(PARTS_HEADER, String(parts));
      try {
        await js.publish(this.subjects.blob(sha256, i), chunk, { headers: h, ...(i === 0 ? { expect: { lastSubjectSequence: 0 } } : {}) });
      } catch (err) {
        // Another replica stored it at the same moment: the same bytes.
        if (!wrongLastSequence(err)) throw err;
      }
    }
  }

  /** Entries past `keep`, oldest first, and the files only they used. */
  private async prune(jsm: JetStreamManager): Promise<void> {
    while (this.indexed.length > this.keep) {
      const oldest = this.indexed.shift() as IndexedEntry;
      await jsm.streams.purge(this.options.stream, { filter: this.subjects.entry(oldest.n) });
      for (const sha of this.refs.release(oldest.n)) await jsm.streams.purge(this.options.stream, { filter: this.subjects.blobParts(sha) });
    }
  }

  async list(limit: number): Promise<HistoryEntry[]> {
    const { jsm } = await this.api();
    await this.catchUp(jsm);
    const newest = this.indexed.slice(-Math.max(0, limit)).reverse();
    const entries = await Promise.all(newest.map((e) => this.read(jsm, e.n)));
    return entries.filter((e): e is HistoryEntry => e !== undefined);
  }

  async index(): Promise<readonly IndexedEntry[]> {
    const { jsm } = await this.api();
    await this.catchUp(jsm);
    return this.indexed;
  }

  async get(n: number): Promise<HistoryEntry | undefined> {
    const { jsm } = await this.api();
    return this.read(jsm, n);
  }

  async content(sha256: string): Promise<Buffer | undefined> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return undefined;
    const { jsm } = await this.api();
    return readFile(jsm, this.options.stream, this.subjects, sha256);
  }

  async readRollout(): Promise<RolloutRecord> {
    const { jsm } = await this.api();
    const m = await jsm.streams.getMessage(this.options.stream, { last_by_subj: this.subjects.rollout });
    if (!m) return {};
    try {
      return JSON.parse(m.string()) as RolloutRecord;
    } catch {
      throw new HistoryError(`${this.where}: the rollout state is not JSON`);
    }
  }

  async writeRollout(record: RolloutRecord): Promise<void> {
    const { js } = await this.api();
    await js.publish(this.subjects.rollout, JSON.stringify(record));
  }

  /** The newest statement for everyone, as published (and, for one whose body travels apart, the body), for sidecars that find no sentinel. */
  async writeCurrent(message: Uint8Array, body?: { sha256: string; bytes: Buffer }): Promise<void> {
    const { js, jsm } = await this.api();
    if (body) await this.storeFile(js, jsm, body.sha256, body.bytes);
    await js.publish(this.subjects.current, message);
  }

  async close(): Promise<void> {
    await this.queue;
  }
}

/** What a sidecar reads when no sentinel answers: the newest statement for everyone, and a part of a body that travelled apart. */
export async function readCurrentStatement(nc: NatsConnection, stream: string, deployment: string): Promise<{ message: Uint8Array; body: (sha256: string) => Promise<Buffer | undefined> } | undefined> {
  const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: API_TIMEOUT });
  const subjects = historySubjects(deployment);
  const m = await jsm.streams.getMessage(stream, { last_by_subj: subjects.current });
  if (!m) return undefined;
  return { message: m.data, body: (sha256) => readFile(jsm, stream, subjects, sha256) };
}

async function readFile(jsm: JetStreamManager, stream: string, subjects: ReturnType<typeof historySubjects>, sha256: string): Promise<Buffer | undefined> {
  const first = await jsm.streams.getMessage(stream, { last_by_subj: subjects.blob(sha256, 0) });
  if (!first) return undefined;
  const parts = Number(first.header?.get(PARTS_HEADER) ?? '1');
  if (!Number.isSafeInteger(parts) || parts < 1 || parts > 100_000) return undefined;
  const chunks: Uint8Array[] = [first.data];
  for (let i = 1; i < parts; i++) {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subjects.blob(sha256, i) });
    if (!m) return undefined;
    chunks.push(m.data);
  }
  const bytes = Buffer.concat(chunks);
  // Whoever can publish on the stream's subjects could put other bytes there: only the digest's own are taken.
  return sha256Hex(bytes) === sha256 ? bytes : undefined;
}

function parseEntry(data: Uint8Array): HistoryEntry | undefined {
  try {
    const entry = JSON.parse(Buffer.from(data).toString('utf8')) as HistoryEntry;
    return typeof entry.n === 'number' && typeof entry.revision === 'string' && Array.isArray(entry.files) ? entry : undefined;
  } catch {
    return undefined;
  }
}

function wrongLastSequence(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: unknown } } | null;
  return e?.code === WRONG_LAST_SEQUENCE || e?.api_error?.err_code === WRONG_LAST_SEQUENCE || /wrong last sequence/i.test(messageOf(err));
}
