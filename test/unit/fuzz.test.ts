import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { stringify as stringifyToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { BusConnection } from '../../src/bus/connection.js';
import { HealthMonitor, readStatusRequest } from '../../src/bus/health-monitor.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { ConfigError, ERROR_CODES } from '../../src/errors.js';
import { loadFiles } from '../../src/policy/load.js';
import { buildSnapshot } from '../../src/policy/snapshot.js';
import { validateSet, type SourceFile } from '../../src/policy/validate.js';
import { keyPositions } from '../../src/text/toml-positions.js';
import { FakeClock } from '../helpers/fake-clock.js';

/**
 * Hostile input, thousands of cases each: nothing may throw past its
 * boundary, hang, or keep memory it should not.
 */

const CODES = new Set<string>(Object.values(ERROR_CODES));
const utf8 = (s: string) => new TextEncoder().encode(s);

/** Inputs meant to break parsers: random bytes, invalid UTF-8, NULs, deep nesting, huge arrays and strings. */
const hostileText = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.json({ maxDepth: 6 }),
  fc.nat({ max: 20_000 }).map((n) => `a = ${'['.repeat(n)}`),
  fc.nat({ max: 20_000 }).map((n) => `${'['.repeat(n)}x${']'.repeat(n)}`),
  fc.nat({ max: 5000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  fc.nat({ max: 2000 }).map((n) => `${'- '.repeat(n)}x`),
  fc.nat({ max: 50_000 }).map((n) => `rules = [${'1,'.repeat(n)}1]`),
  fc.nat({ max: 200_000 }).map((n) => `version = "${'v'.repeat(n)}"`),
  fc.string({ maxLength: 100 }).map((s) => `version = "1.0"\n\0${s}\0`),
);
const hostileBytes = fc.oneof(
  hostileText.map(utf8),
  fc.uint8Array({ maxLength: 500 }),
  fc.constant(new Uint8Array([0xff, 0xfe, 0xfd, 0x00, 0xc3, 0x28])),
);

describe('fuzz: the heartbeat decoder', () => {
  it('takes any bytes without throwing, counts each message under exactly one outcome (but a goodbye from an instance it does not track), and tracks no more than its cap', () => {
    const clock = new FakeClock();
    const bus = new BusConnection({ servers: ['nats://127.0.0.1:1'], name: 'fuzz', log: pino({ level: 'silent' }) });
    const monitor = new HealthMonitor({
      bus,
      clock,
      component: 'sentinel',
      instance: 'fuzz',
      healthIntervalMs: 1000,
      // A rostered component: its live instances heard twice are never displaced, so a full table of them refuses.
      required: ['gateway'],
      optional: [],
      maxInstances: 200,
      log: pino({ level: 'silent' }),
    });
    monitor.aggregator.setConnected(true);
    const envelope = (payload: unknown) => utf8(JSON.stringify({ id: 'i', timestamp: 't', source: 's', type: 'system.health', payload }));
    const heartbeatish = fc.record(
      {
        status: fc.oneof(fc.constantFrom('healthy', 'degraded', 'unhealthy'), fc.anything()),
        component: fc.oneof(fc.string({ maxLength: 80 }), fc.anything()),
        instance: fc.oneof(fc.string({ maxLength: 200 }), fc.anything()),
        intervalMs: fc.oneof(fc.integer(), fc.double(), fc.anything()),
        state: fc.oneof(fc.constantFrom('starting', 'running', 'stopping'), fc.anything()),
        checks: fc.oneof(fc.dictionary(fc.string(), fc.constantFrom('ok', 'error')), fc.anything()),
        policy: fc.anything(),
      },
      { requiredKeys: [] },
    );
    // Valid heartbeats from ever new instances, so that the cap is reached and must hold; a few say goodbye.
    const valid = fc
      .record({
        component: fc.constantFrom('gateway', 'llm', 'slack'),
        instance: fc.stringMatching(/^[a-z0-9]{1,16}$/),
        state: fc.constantFrom('running', 'running', 'running', 'stopping'),
      })
      .map((h) => envelope({ status: 'healthy', intervalMs: 1000, ...h }));
    // A few instances heard again and again, and leaving: leaves of tracked instances, not only of strangers.
    const familiar = fc
      .record({ instance: fc.constantFrom('f1', 'f2', 'f3'), state: fc.constantFrom('running', 'stopping') })
      .map((h) => envelope({ status: 'healthy', component: 'llm', intervalMs: 1000, ...h }));
    const message = fc.oneof(hostileBytes, heartbeatish.map(envelope), fc.anything().map(envelope), valid, familiar);
    /** The counters a message can land in: one of them, exactly once, per message. */
    const outcomes = (): Record<string, number> => {
      const c = monitor.counters;
      return { accepted: c.accepted, left: c.left, ignored: c.ignored, refused: c.refused, ...Object.fromEntries(Object.entries(c.rejected).map(([why, n]) => [`rejected.${why}`, n])) };
    };
    /** Read apart from the monitor, before it takes the message: who it claims to be, and whether that one is tracked. */
    const claim = (data: Uint8Array) => {
      try {
        const payload = (JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as { payload?: Record<string, unknown> }).payload;
        const component = payload?.component;
        const instance = payload?.instance ?? component;
        if (typeof component !== 'string' || typeof instance !== 'string') return undefined;
        const tracked = monitor.aggregator.view(component).components.some((c) => c.name === component && c.instances.some((i) => i.instance === instance));
        return { stopping: payload?.state === 'stopping', tracked };
      } catch {
        return undefined;
      }
    };
    const started = performance.now();
    let sent = 0;
    let goodbyesOfStrangers = 0;
    let mostTracked = 0;
    const landed = new Map<string, number>();
    fc.assert(
      fc.property(message, (data) => {
        const who = claim(data);
        const before = outcomes();
        const receivedBefore = monitor.counters.received;
        monitor.ingest(data);
        sent++;
        const after = outcomes();
        const moved = Object.keys(after).filter((k) => after[k] !== before[k]);
        expect(monitor.counters.received - receivedBefore).toBe(1);
        {
          expect(moved, 'a message counted under no outcome, or more than one').toHaveLength(1);
          const [outcome] = moved as [string];
          expect((after[outcome] ?? 0) - (before[outcome] ?? 0), outcome).toBe(1);
          // A leave is counted only for an instance it tracked.
          if (outcome === 'left') expect(who).toMatchObject({ stopping: true, tracked: true });
          // Ignored, only a goodbye (`stopping`) from an instance not tracked, which changes nothing.
          if (outcome === 'ignored') {
            expect(who).toMatchObject({ stopping: true, tracked: false });
            goodbyesOfStrangers++;
          }
          landed.set(outcome, (landed.get(outcome) ?? 0) + 1);
        }
        mostTracked = Math.max(mostTracked, monitor.aggregator.trackedCount);
        clock.advance(1); // 5 s in all: hundreds of instances live at once, against a cap of 200
        monitor.aggregator.tick();
      }),
      { numRuns: 5000 },
    );
    // The outcomes these inputs reach every run were each reached, so the per-message check was put to work on
    // each (a refusal needs a table full of rostered instances heard twice, which random names rarely make).
    for (const outcome of ['accepted', 'left', 'rejected.json', 'rejected.payload', 'rejected.encoding']) expect(landed.get(outcome), outcome).toBeGreaterThan(0);
    expect(goodbyesOfStrangers).toBeGreaterThan(0);
    const c = monitor.counters;
    const rejected = Object.values(c.rejected).reduce((a, b) => a + b, 0);
    expect(c.received).toBe(sent);
    expect(c.ignored).toBe(goodbyesOfStrangers);
    expect(c.accepted + c.left + c.ignored + c.refused + rejected).toBe(sent);
    // The cap was reached and held: making room (evictions), or, with no room to make, refusing.
    expect(mostTracked).toBe(200);
    expect(monitor.aggregator.trackedCount).toBeLessThanOrEqual(200);
    expect(c.refused + c.evicted).toBeGreaterThan(0);
    expect(c.accepted).toBeGreaterThan(200);
    expect(rejected).toBeGreaterThan(0);
    expect(performance.now() - started).toBeLessThan(60_000);
  });
});

describe('fuzz: the status-request decoder', () => {
  it('never throws: it names at most one sane component, or says what is wrong', () => {
    fc.assert(
      fc.property(fc.oneof(hostileBytes, fc.anything().map((v) => utf8(JSON.stringify({ payload: { component: v } }) ?? ''))), (data) => {
        const request = readStatusRequest(data);
        if (!request.ok) {
          expect(request.error.length).toBeGreaterThan(0);
          return;
        }
        const { component, correlationId } = request;
        expect(component === undefined || (typeof component === 'string' && component.length <= 64)).toBe(true);
        expect(correlationId === undefined || typeof correlationId === 'string').toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('reads back what a well-formed request asks, enveloped or bare', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64 }), fc.uuid(), (name, id) => {
        const enveloped = utf8(JSON.stringify({ id, timestamp: 't', source: 's', type: 'system.health.status', payload: { component: name } }));
        expect(readStatusRequest(enveloped)).toEqual({ ok: true, component: name, correlationId: id });
        // Nachos' bus client sends its own correlationId, and matches the reply by it.
        const correlated = utf8(JSON.stringify({ id, correlationId: 'c-1', timestamp: 't', source: 's', type: 't', payload: { component: name } }));
        expect(readStatusRequest(correlated)).toEqual({ ok: true, component: name, correlationId: 'c-1' });
        expect(readStatusRequest(utf8(JSON.stringify({ component: name })))).toEqual({ ok: true, component: name, correlationId: undefined });
      }),
      { numRuns: 1000 },
    );
  });
});

describe('fuzz: the policy validator and snapshot', () => {
  it('reports problems for any content, never throws, and every problem is well-formed', () => {
    const file = fc.record({
      name: fc.constantFrom('a.toml', 'b.yaml', 'c.yml', '../n.toml'),
      content: hostileBytes,
    });
    fc.assert(
      fc.property(fc.array(file, { minLength: 1, maxLength: 4 }), (files) => {
        const sources: SourceFile[] = files.map((f, i) => ({
          path: `${i}-${f.name}`,
          kind: f.name.startsWith('..') ? 'config' : 'policy',
          content: Buffer.from(f.content),
        }));
        const result = validateSet(sources);
        for (const p of result.problems) {
          expect(CODES.has(p.code)).toBe(true);
          expect(typeof p.message).toBe('string');
          expect(sources.some((s) => s.path === p.file)).toBe(true);
        }
        const snapshot = buildSnapshot(sources, [], { allowEmpty: false });
        expect(snapshot.ok ? snapshot.snapshot.revision : snapshot.rejection.revision).toMatch(/^[0-9a-f]{64}$/);
      }),
      { numRuns: 3000 },
    );
  });

  it('finds key positions in any text without throwing', () => {
    fc.assert(
      fc.property(hostileText, (text) => {
        keyPositions(text);
      }),
      { numRuns: 3000 },
    );
  });

  it('loads any directory of hostile files without throwing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fuzz-load-'));
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.constantFrom('.toml', '.yaml'), hostileBytes), { maxLength: 4 }), async (files) => {
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir);
          for (const [name, ext, content] of files) writeFileSync(path.join(dir, `${name}${ext}`), content);
          const loaded = await loadFiles({ dir, extraFiles: [], maxFileBytes: 64 * 1024 });
          const result = buildSnapshot(loaded.sources, loaded.problems, { allowEmpty: false });
          expect(typeof result.ok).toBe('boolean');
        }),
        { numRuns: 1000 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fuzz: the config loader', () => {
  it('either resolves or throws a ConfigError naming where, for any file, flag or variable', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fuzz-config-'));
    const file = path.join(dir, 'sentinel.toml');
    const keys = fc.constantFrom('servers', 'policies', 'quiet_window', 'max_wait', 'log_level', 'health', 'http', 'auth', 'tls', 'zzz', 'signing_seed');
    const tomlDoc = fc.dictionary(keys, fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.array(fc.string()), fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer()))));
    const content = fc.oneof(hostileText, tomlDoc.map((d) => {
      try {
        return stringifyToml(d);
      } catch {
        return '';
      }
    }));
    const flagValue = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('5s', '0', '-1', 'off', ':9', 'nats://x:1', ''));
    try {
      fc.assert(
        fc.property(content, fc.dictionary(fc.constantFrom('quiet-window', 'interval', 'http', 'servers', 'max-file-size', 'component'), flagValue), fc.dictionary(fc.constantFrom('LOG_LEVEL', 'NATS_URL', 'SENTINEL_MAX_WAIT', 'SENTINEL_HTTP'), flagValue), (text, flags, env) => {
          writeFileSync(file, text);
          try {
            resolveConfig({ flags: { config: file, ...flags }, env, cwd: dir });
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            expect((err as ConfigError).where.length).toBeGreaterThan(0);
          }
        }),
        { numRuns: 3000 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
