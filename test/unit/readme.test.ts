import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseCommandLine } from '../../src/cli/command-line.js';
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
  it('documents every setting on one row of the configuration table: its flag, environment variables, config key and default; and every other flag and command', () => {
    // The table in docs/configuration.md: | flag | environment | config key | default | what |
    const rows = doc('docs/configuration.md')
      .split('\n')
      .filter((line) => /^\|.*\|$/.test(line) && !/^\| (flag|---) /.test(line))
      .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
    expect(rows.length).toBeGreaterThan(30);
    for (const s of SETTINGS) {
      const key = s.key === 'checks' ? '`[[health.checks]]`' : `\`${s.file}\``;
      const row = rows.filter((cells) => cells[2]?.includes(key));
      expect(row, `one row for ${s.file}`).toHaveLength(1);
      const [flag, env, , defaultText] = row[0] as string[];
      if (s.flag) expect(flag, s.file).toContain(`\`--${s.flag}\``);
      for (const name of s.env) expect(env, s.file).toContain(`\`${name}\``);
      // Its default, in its own column of its own row: the same text the code has, or "none".
      expect(defaultText, `the default of ${s.file}`).toBe(s.defaultText ? `\`${s.defaultText}\`` : 'none');
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
    // Exactly: the quick start's command block holds these commands, in this order, and nothing else.
    const quickStart = front.slice(front.indexOf('## Quick start'), front.indexOf('\n## ', front.indexOf('## Quick start') + 1));
    const commands = (blocksOf(quickStart, 'sh')[0] ?? '')
      .split('\n')
      .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
      .filter(Boolean);
    expect(commands).toEqual(['npm ci && npm start', 'npm test']);
    expect(front).toContain('npm ci && npm start');
    expect(front).toContain('npm test');
    expect(front).toMatch(/npm ci && npm start +# the daemon on \.\/policies; with no bus on nats:\/\/127\.0\.0\.1:4222, it starts a private one/);
    expect(front).toContain('sudo apt-get install nats-server');
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

  it('shows only commands that exist: every nachos-sentinel command line in a shell block parses, every npm script and repository file it names exists', () => {
    const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    let checked = 0;
    for (const page of DOC_PAGES) {
      for (const block of blocksOf(doc(page), 'sh')) {
        for (const line of block.replace(/\\\n\s*/g, ' ').split('\n')) {
          const code = line.replace(/(^|\s)#.*$/, '').trim();
          for (const segment of code.split(/&&|\|\||;|\|/).map((s) => s.trim()).filter(Boolean)) {
            const words = shellWords(segment).filter((w) => !/^[A-Z_]+=/.test(w));
            const where = `${page}: ${segment}`;
            // The executable in command position (not an image or a file named after it).
            const at = words.findIndex((w, i) => (w === 'nachos-sentinel' && (i === 0 || words[i - 1] === 'npx' || words[i - 2] === 'exec')) || (w === 'dist/cli/bin.cjs' && words[i - 1] === 'node'));
            if (at >= 0) {
              const argv = words.slice(at + 1);
              if (argv.includes('--once')) {
                expect(() => parseArgs({ args: argv, options: PROBE_OPTIONS, allowPositionals: false, strict: true }), where).not.toThrow();
              } else {
                expect(() => parseCommandLine(argv), where).not.toThrow();
              }
              checked++;
            }
            if (words[0] === 'npm' && words[1] === 'run') expect(scripts, where).toHaveProperty([words[2] as string]);
            for (const w of words) {
              // A repository file a command reads (a hidden name is one the command makes: a temporary file).
              if (/^(\.\/)?(policies|deploy|examples|test|bench|src|scripts|docs)\/([\w-]+\/)*[\w-][\w.-]*\.\w+$/.test(w)) expect(existsSync(path.join(ROOT, w)), `${where}: ${w}`).toBe(true);
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(10);
  });
});

/** A shell line's words, quotes taken off (no expansion: what a command is given as written). */
function shellWords(text: string): string[] {
  const words: string[] = [];
  for (const m of text.matchAll(/'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g)) words.push(m[1] ?? m[2] ?? m[3] ?? '');
  return words;
}
