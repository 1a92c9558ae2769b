import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dueToLog, INITIAL_RETRY_WAIT, MAX_RETRY_WAIT, WAITING_LOG_EVERY } from '../../src/bus/connection.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { loadFiles } from '../../src/policy/load.js';
import { buildSnapshot } from '../../src/policy/snapshot.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Messages that misled, each pinned as it now reads. */
describe('messages that say what is wrong', () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => cleanup?.());
  const dir = () => {
    const t = tempDir();
    cleanup = t.cleanup;
    return t.dir;
  };
  const configError = (text: string) => {
    const d = dir();
    const file = path.join(d, 'sentinel.toml');
    writeFileSync(file, text);
    try {
      resolveConfig({ flags: { config: file }, env: {}, cwd: d });
    } catch (err) {
      return (err as Error).message.slice(file.length);
    }
    return 'no error';
  };

  it('a server list of numbers names the first that is not a URL (it said "got an array")', () => {
    expect(configError('servers = [1, 2]\n')).toBe(':1:1: key "servers[0]": must be a string, got 1');
  });

  it('a check table without its url, or of an unknown type, says so (it said "got a table")', () => {
    expect(configError('[[health.checks]]\nname = "x"\ntype = "http"\n')).toBe(':1:1: key "health.checks[0]": missing required key "url"');
    expect(configError('[[health.checks]]\nname = "x"\ntype = "smtp"\n')).toBe(':1:1: key "health.checks[0].type": must be one of "http", "tcp", "command", got "smtp"');
    expect(configError('[[health.checks]]\nname = "x"\n')).toBe(':1:1: key "health.checks[0]": missing required key "type"');
  });

  it('a missing --watch-file does not exist, and only a link to nothing is a dangling symlink', async () => {
    const d = dir();
    mkdirSync(path.join(d, 'p'));
    writeFileSync(path.join(d, 'p', 'a.toml'), 'x = 1');
    symlinkSync('gone.toml', path.join(d, 'p', 'b.toml'));
    const loaded = await loadFiles({ dir: path.join(d, 'p'), extraFiles: [path.join(d, 'nachos.toml')], maxFileBytes: 1024 });
    expect(loaded.problems.map((p) => [p.file, p.message])).toEqual([
      ['../nachos.toml', 'does not exist (or was removed while being read)'],
      ['b.toml', 'is a dangling symlink: its target gone.toml does not exist'],
    ]);
  });

  it('a directory of files over the size cap says that, and not also that it holds no policy files', async () => {
    const d = dir();
    writeFileSync(path.join(d, 'a.toml'), 'version = "1.0"\nrules = []\n');
    const loaded = await loadFiles({ dir: d, extraFiles: [], maxFileBytes: 10 });
    const result = buildSnapshot(loaded.sources, loaded.problems, { allowEmpty: false });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.rejection.problems.map((p) => p.message)).toEqual(['is over the size cap of 10 bytes (27 bytes); see max_file_size']);
  });

  it('an empty set names the flag as well as the config key', () => {
    const result = buildSnapshot([], [], { allowEmpty: false });
    expect(result.ok ? '' : result.rejection.problems[0]?.message).toBe(
      'no policy files (*.toml, *.yaml, *.yml) in the policy directory; allow an empty set with allow_empty = true (--allow-empty)',
    );
  });

  it('says "still waiting for the bus" every 10 s as it claims, not every 12 s', () => {
    // The daemon's own schedule: attempts after 250 ms, doubling to 2 s; a line at the attempt nearest each 10 s.
    let at = 0;
    let wait = INITIAL_RETRY_WAIT;
    let last = Number.NEGATIVE_INFINITY;
    const logged: number[] = [];
    while (at < 60_000) {
      if (dueToLog(at - last, wait)) {
        logged.push(at);
        last = at;
      }
      at += wait;
      wait = Math.min(wait * 2, MAX_RETRY_WAIT);
    }
    const gaps = logged.slice(1).map((t, i) => t - (logged[i] as number));
    expect(gaps.length).toBeGreaterThanOrEqual(5);
    for (const gap of gaps) expect(Math.abs(gap - WAITING_LOG_EVERY)).toBeLessThanOrEqual(MAX_RETRY_WAIT / 2);
  });
});
