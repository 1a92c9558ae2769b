import { existsSync } from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { COMMANDS, COMMON_FLAGS } from '../../src/cli/command-line.js';
import { PROBE_OPTIONS } from '../../src/cli/probe/once.js';
import { SETTINGS } from '../../src/config/settings.js';
import { ERROR_CODES } from '../../src/errors.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { allDocs, blocksOf, doc, DOC_PAGES, ROOT } from '../helpers/docs.js';

const readme = allDocs();
const blocks = (lang: string) => blocksOf(readme, lang);

describe('the documentation (README and docs/), as a user guide', () => {
  it('documents every flag, environment variable and config key with its default', () => {
    for (const s of SETTINGS) {
      if (s.flag) expect(readme, `--${s.flag}`).toContain(`\`--${s.flag}\``);
      for (const env of s.env) expect(readme, env).toContain(`\`${env}\``);
      expect(readme, s.file).toContain(s.file.includes('.') && s.key === 'checks' ? '[[health.checks]]' : `\`${s.file}\``);
      if (s.defaultText) expect(readme, `default of ${s.file}`).toContain(`\`${s.defaultText}\``);
    }
    for (const flag of [...Object.keys(COMMON_FLAGS), ...Object.keys(PROBE_OPTIONS)]) expect(readme, `--${flag}`).toContain(`--${flag}`);
    for (const command of Object.keys(COMMANDS)) expect(readme, command).toContain(`nachos-sentinel ${command}`);
    expect(readme).toContain('SENTINEL_CONFIG');
  });

  it('documents every subject, and the error codes a rejection can carry', () => {
    for (const subject of Object.values(SUBJECTS)) expect(readme, subject).toContain(subject);
    for (const code of [ERROR_CODES.POLICY_SCHEMA, ERROR_CODES.NO_SNAPSHOT]) expect(readme).toContain(code);
  });

  it('names only source files that exist, where it says they are', () => {
    const named = [...readme.matchAll(/`((?:src\/|test\/|bench\/)?[a-z-]+\/[a-z0-9/-]+\.c?ts)`/g)].map((m) => m[1] as string);
    expect(named.length).toBeGreaterThan(15);
    for (const file of named) {
      const where = /^(src|test|bench)\//.test(file) ? file : `src/${file}`;
      expect(existsSync(path.join(ROOT, where)), where).toBe(true);
    }
  });

  it('shows the commands of the quick start exactly, with the bus first, in the README itself', () => {
    const front = doc('README.md');
    expect(front).toContain('npm ci && npm start');
    expect(front).toContain('npm test');
    expect(front).toMatch(/apt-get install nats-server && nats-server -a 127\.0\.0\.1/);
  });

  it('is a front door: the README is short, and every page it and docs/ link to, and every heading a link names, exists', () => {
    expect(doc('README.md').split('\n').length).toBeLessThan(200);
    const slug = (h: string) => h.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
    const anchorsOf = (page: string) => {
      const text = doc(page).replace(/```[\s\S]*?```/g, '');
      return new Set([...text.matchAll(/^#{1,6} (.*)$/gm)].map((m) => slug(m[1] ?? '')));
    };
    for (const page of DOC_PAGES) {
      const text = doc(page).replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:\/\//.test(target as string)) continue;
        const [file, anchor] = (target as string).split('#') as [string, string | undefined];
        const resolved = file === '' ? page : path.posix.normalize(path.posix.join(path.posix.dirname(page), file));
        expect(existsSync(path.join(ROOT, resolved)), `${page} links to ${target}`).toBe(true);
        if (anchor && resolved.endsWith('.md')) expect(anchorsOf(resolved).has(anchor), `${page} links to ${target}`).toBe(true);
      }
    }
  });

  it('has examples that parse: TOML, YAML and (unabridged) JSON', () => {
    for (const toml of blocks('toml')) expect(() => parseToml(toml)).not.toThrow();
    for (const yaml of blocks('yaml')) expect(parseAllDocuments(yaml).flatMap((d) => d.errors)).toEqual([]);
    const json = blocks('json').filter((j) => !j.includes('…'));
    expect(json.length).toBeGreaterThan(2);
    for (const j of json) expect(() => JSON.parse(j)).not.toThrow();
  });
});
