import { execFileSync, spawn } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { validate as lintDockerfile, ValidationSeverity } from 'dockerfile-utils';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { it } from '../helpers/fixtures.js';
import { freePort } from '../helpers/nats-server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';

/**
 * No Docker engine runs on these machines, so the deployment files are checked
 * offline: the Dockerfile with a linter and against what it must do, the compose
 * file against the Compose JSON schema, and the image's layout is built for real
 * (production dependencies only) and its HEALTHCHECK run from it.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const ALL_ERRORS = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(text: string): { stage: number; keyword: string; args: string }[] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  let stage = -1;
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [keyword = '', ...rest] = l.split(/\s+/);
      if (keyword.toUpperCase() === 'FROM') stage++;
      return { stage, keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

describe('the Dockerfile', () => {
  const steps = instructions(dockerfile);
  const runtime = steps.filter((s) => s.stage === Math.max(...steps.map((x) => x.stage)));

  it('passes the linter, which does catch a broken one', () => {
    expect(lintDockerfile(dockerfile, ALL_ERRORS)).toEqual([]);
    expect(lintDockerfile('FROM node:20\nworkdir app\nCMD ["a"]\nCMD [\'b\']\n', ALL_ERRORS).length).toBeGreaterThan(0);
  });

  it('is multi-stage, production dependencies only, non-root, policies at /app/policies, with the probe as HEALTHCHECK', () => {
    expect(steps.filter((s) => s.keyword === 'FROM').length).toBeGreaterThanOrEqual(2);
    expect(runtime.find((s) => s.keyword === 'RUN' && s.args.includes('npm ci'))?.args).toMatch(/--omit=dev/);
    expect(runtime.find((s) => s.keyword === 'USER')?.args).toBe('node');
    expect(runtime.find((s) => s.keyword === 'VOLUME')?.args).toContain('/app/policies');
    expect(runtime.find((s) => s.keyword === 'ENV')?.args).toContain('POLICY_PATH=/app/policies');
    // The policy history: a volume of its own, which the image's user may write.
    expect(runtime.find((s) => s.keyword === 'ENV')?.args).toContain('SENTINEL_STATE_DIR=/var/lib/nachos-sentinel');
    expect(runtime.find((s) => s.keyword === 'VOLUME')?.args).toContain('/var/lib/nachos-sentinel');
    expect(dockerfile).toMatch(/chown node:node [^\n]*\/var\/lib\/nachos-sentinel/);
    expect(runtime.find((s) => s.keyword === 'HEALTHCHECK')?.args).toMatch(/CMD \["node", "\/app\/dist\/cli\/bin\.cjs", "--once", "--self"\]$/);
  });
});

describe('compose.yaml', () => {
  const compose = parseYaml(readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8')) as {
    services: Record<string, { volumes?: string[]; command?: string[]; healthcheck?: { test: string[] }; depends_on?: Record<string, { condition: string }> }>;
    volumes?: Record<string, unknown>;
  };

  it('is valid against the Compose JSON schema, and dclint finds nothing', () => {
    const schema = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/dclint/schemas/compose.schema.json'), 'utf8')) as object;
    const check = new Ajv({ strict: false, allErrors: true, validateSchema: false }).compile(schema);
    expect(check(compose), JSON.stringify(check.errors)).toBe(true);
    expect(check({ services: { x: { healthcheck: { interval: 5 } } } })).toBe(false);
    const lint = execFileSync(process.execPath, [path.join(ROOT, 'node_modules/dclint/bin/dclint.cjs'), 'compose.yaml'], { cwd: ROOT, encoding: 'utf8' });
    expect(lint.trim()).toBe('');
  });

  it('escapes every $ that Compose would interpolate, and the stand-in gateway is a script Node compiles (as Compose hands it over)', async () => {
    const { Script } = await import('node:vm');
    // Compose reads `$VAR` and `${VAR}` as variables; a literal dollar sign is written `$$`.
    const text = readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8');
    const lone = text.split('\n').filter((line) => !line.trimStart().startsWith('#') && /(?<!\$)\$(?![${])/.test(line.replace(/\$\$/g, '')));
    expect(lone).toEqual([]);
    const script = (compose.services.gateway?.command?.[0] ?? '').replace(/\$\$/g, '$');
    expect(script).toContain('/\\.ya?ml$/.test(f)');
    expect(() => new Script(script)).not.toThrow();
  });

  it('starts nothing before the bus is healthy, mounts the policies read-only, and probes a service through the sentinel', () => {
    const { nats, sentinel, ...others } = compose.services;
    expect(nats?.healthcheck?.test.join(' ')).toContain('/healthz');
    expect(sentinel?.volumes).toContain('./policies:/app/policies:ro');
    // A rollback outlives the container: the history on a named volume.
    const state = sentinel?.volumes?.find((v) => v.endsWith(':/var/lib/nachos-sentinel'))?.split(':')[0];
    expect(compose.volumes).toHaveProperty([state as string]);
    for (const service of [sentinel, ...Object.values(others)]) expect(service?.depends_on?.nats?.condition).toBe('service_healthy');
    const probed = Object.values(others).find((s) => s.healthcheck?.test.includes('--once'));
    expect(probed?.healthcheck?.test).toEqual(expect.arrayContaining(['nachos-sentinel', '--once', '--component']));
  });

  it('gives the gateway a sidecar that checks it and delivers into the volume it reads, read-only', () => {
    const { gateway, 'gateway-sidecar': sidecar } = compose.services;
    const flag = (name: string) => sidecar?.command?.[(sidecar.command.indexOf(name) ?? -2) + 1];
    expect(sidecar?.command?.[0]).toBe('sidecar');
    expect(flag('--component')).toBe('gateway');
    expect(flag('--check')).toBe('http://gateway:8081/health');
    const [volume, target] = (sidecar?.volumes?.[0] ?? '').split(':');
    expect(flag('--deliver-to')).toBe(target);
    // Read-only, never filled from the gateway's image (nocopy), and made by the sidecar's mount first.
    expect(gateway?.volumes).toContainEqual({ type: 'volume', source: volume, target: '/app/policies', read_only: true, volume: { nocopy: true } });
    expect(gateway?.depends_on).toHaveProperty(['gateway-sidecar', 'condition'], 'service_started');
    expect(compose.volumes).toHaveProperty([volume as string]);
    // The image lets its user write there, so that a new named volume is writable too.
    expect(dockerfile).toContain(`chown node:node ${target}`);
  });
});

describe('the image layout', () => {
  let app: string;
  let cleanup: () => void;

  beforeAll(async () => {
    ({ dir: app, cleanup } = tempDir('sentinel-image-'));
    // What the runtime stage does: package files, production dependencies only, then dist/ and policies/.
    for (const f of ['package.json', 'package-lock.json']) cpSync(path.join(ROOT, f), path.join(app, f));
    execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app, stdio: 'ignore' });
    cpSync(path.join(ROOT, 'dist'), path.join(app, 'dist'), { recursive: true });
    cpSync(path.join(ROOT, 'policies'), path.join(app, 'policies'), { recursive: true });
  }, 120_000);
  afterAll(() => cleanup());

  it('copies what the Dockerfile copies', () => {
    const copies = instructions(dockerfile).filter((s) => s.keyword === 'COPY' && s.stage > 0).map((s) => s.args);
    expect(copies).toEqual(['package.json package-lock.json ./', '--from=build /app/dist ./dist', 'policies ./policies']);
    expect(() => execFileSync('node', ['-e', "require.resolve('vitest')"], { cwd: app, stdio: 'ignore' })).toThrow();
  });

  it('runs the daemon and passes its own HEALTHCHECK, with no dev dependency', async ({ server }) => {
    const http = `127.0.0.1:${await freePort()}`;
    const child = spawn(process.execPath, [path.join(app, 'dist/cli/bin.cjs')], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', NATS_URL: server.url, POLICY_PATH: path.join(app, 'policies'), SENTINEL_HTTP: http, SENTINEL_STATE_DIR: path.join(app, 'state') },
      stdio: 'ignore',
    });
    try {
      const healthcheck = /HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])/.exec(dockerfile)?.[1];
      const argv = (JSON.parse(healthcheck ?? '[]') as string[]).map((a) => a.replace('/app/', `${app}/`));
      expect(argv[0]).toBe('node');
      const run = () => {
        try {
          return execFileSync(process.execPath, argv.slice(1), { cwd: app, env: { PATH: process.env.PATH ?? '', SENTINEL_HTTP: http }, encoding: 'utf8' });
        } catch {
          return undefined;
        }
      };
      const output = await until(run, 15_000, 'the HEALTHCHECK to pass');
      expect(output).toMatch(/^ready: connected to the bus, policy revision [0-9a-f]{12}\n$/);
      // The bus probe, from the image's pre-bundled client.
      const onBus = await until(
        () => {
          try {
            return execFileSync(process.execPath, [path.join(app, 'dist/cli/bin.cjs'), '--once', '--component', 'sentinel', '--servers', server.url], {
              cwd: app,
              encoding: 'utf8',
            });
          } catch {
            return undefined;
          }
        },
        15_000,
        'the bus probe to pass',
      );
      expect(onBus).toMatch(/^component sentinel: healthy/);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
