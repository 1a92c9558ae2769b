import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.js';
import type { Problem } from '../errors.js';
import type { PolicyState } from '../policy/snapshot.js';
import type { StatusView, Transition } from '../health/aggregator.js';
import type { Rejection } from '../policy/snapshot.js';
import type { RolloutView } from '../health/rollout-ledger.js';

/** Transitions kept for the status page. */
export const RECENT_TRANSITIONS = 50;
/** Live pages get the whole document this often (so ages move), and at once on any change. */
export const PUSH_INTERVAL = 1000; // ms
const CHANGE_DEBOUNCE = 100; // ms
/** Open status pages at once; more get 503 (each costs a document a second). */
export const MAX_STREAM_CLIENTS = 32;
/** Warnings of the set in force shown on the page (all of them: `nachos-sentinel validate`). */
const SHOWN_WARNINGS = 50;
/** A page that has this much unsent is not reading: it is dropped (its browser reconnects by itself). */
export const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/** Everything the status page shows, as `/status.json` serves it. Never holds a secret. */
export interface StatusDocument {
  schemaVersion: 1;
  generatedAt: string;
  sentinel: { component: string; instance: string; version: string; uptimeSeconds: number; connected: boolean; server: string | null };
  health: StatusView;
  transitions: Transition[];
  policy: {
    inForce: { revision: string; files: number; rules: number; since: string | null; sequence: number | null; warnings: Problem[]; warningsLeftOut: number } | null;
    lastRejection: { revision: string; at: string; stillOnDisk: boolean; problems: Problem[] } | null;
  };
  /** The rollout of the set in force (a rollback, a canary, who runs what): what `rollout status` shows. */
  rollout: RolloutView | null;
}

/** What the status page reads: read-only views of the daemon's parts. */
export interface FeedSource {
  identity: { component: string; instance: string; version: string };
  policy: PolicyState;
  /** The sequence number the revision in force was announced with, if it was. */
  announcedSequence(revision: string): number | null;
  bus: { readonly connected: boolean; readonly server: string | null };
  view(): StatusView;
  rollout?: () => RolloutView;
}

/**
 * What the status page reads: the daemon's state as one document, recent
 * transitions and the last rejected set remembered, and a server-sent-events
 * stream that pushes the document on every change and every second. The
 * composition root tells it what happens (`transition`, `rejected`, `accepted`).
 */
export class StatusFeed {
  private readonly transitions: Transition[] = [];
  private lastRejection: StatusDocument['policy']['lastRejection'] = null;
  private inForceSince: string | null = null;
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private readonly startedAt: number;

  constructor(
    private readonly source: FeedSource,
    private readonly clock: Clock,
  ) {
    this.startedAt = clock.now();
  }

  transition(t: Transition): void {
    this.transitions.unshift(t);
    this.transitions.length = Math.min(this.transitions.length, RECENT_TRANSITIONS);
    this.changed();
  }

  rejected(rejection: Rejection): void {
    this.lastRejection = { revision: rejection.revision, at: new Date(this.clock.wallNow()).toISOString(), stillOnDisk: true, problems: rejection.problems };
    this.changed();
  }

  accepted(): void {
    this.inForceSince = new Date(this.clock.wallNow()).toISOString();
    this.changed();
  }

  document(): StatusDocument {
    const { source, clock } = this;
    const { policy: reloader, bus } = source;
    const inForce = reloader.inForce;
    if (this.lastRejection) this.lastRejection.stillOnDisk = reloader.lastRejection?.revision === this.lastRejection.revision;
    return {
      schemaVersion: 1,
      generatedAt: new Date(clock.wallNow()).toISOString(),
      sentinel: {
        ...source.identity,
        uptimeSeconds: Math.round((clock.now() - this.startedAt) / 1000),
        connected: bus.connected,
        server: bus.server,
      },
      health: source.view(),
      transitions: this.transitions,
      policy: {
        inForce: inForce
          ? {
              revision: inForce.revision,
              files: inForce.files.length,
              rules: inForce.ruleCount,
              since: this.inForceSince,
              sequence: source.announcedSequence(inForce.revision),
              // The set's warnings (unknown keys, files the consumer never reads, types that change no decision), the first few.
              warnings: inForce.warnings.slice(0, SHOWN_WARNINGS),
              warningsLeftOut: Math.max(0, inForce.warnings.length - SHOWN_WARNINGS),
            }
          : null,
        lastRejection: this.lastRejection,
      },
      rollout: source.rollout?.() ?? null,
    };
  }

  /** GET /events: the document now, then on every change and every second. */
  stream(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'HEAD' && this.clients.size >= MAX_STREAM_CLIENTS) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '10' }).end('too many open status pages\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
    this.send(res);
    this.timer ??= setInterval(() => this.push(), PUSH_INTERVAL).unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private changed(): void {
    if (this.clients.size === 0 || this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.push();
    }, CHANGE_DEBOUNCE).unref();
  }

  private push(): void {
    if (this.clients.size === 0) return;
    const data = `data: ${JSON.stringify(this.document())}\n\n`;
    for (const res of this.clients) {
      if (res.writableLength > MAX_UNSENT_BYTES) {
        this.clients.delete(res);
        res.destroy();
      } else {
        res.write(data);
      }
    }
  }

  private send(res: ServerResponse): void {
    res.write(`retry: 2000\ndata: ${JSON.stringify(this.document())}\n\n`);
  }
}
