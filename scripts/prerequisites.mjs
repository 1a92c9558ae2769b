#!/usr/bin/env node
/**
 * What `npm test` needs besides Node, checked before anything is built: the
 * programs the suite drives from the outside. Missing ones are installed when
 * that can be done here (root, with apt, as CI does); otherwise the one
 * command that installs them is printed, and the run does not start: a suite
 * that would fail an hour later on a missing program never starts.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Each program, where it may be, the Debian package that installs it, and what needs it. */
export const PREREQUISITES = [
  { name: 'nats-server', candidates: [process.env.NATS_SERVER_BIN ?? '', 'nats-server', '/usr/sbin/nats-server'], apt: 'nats-server', why: 'every bus test starts its own' },
  { name: 'chromium', candidates: [process.env.CHROMIUM_PATH ?? '', '/usr/bin/chromium'], apt: 'chromium', why: 'the status page test' },
  { name: 'tmux', candidates: ['tmux'], apt: 'tmux', why: 'the terminal view test' },
  { name: 'openssl', candidates: ['openssl'], apt: 'openssl', why: 'TLS certificates and the signature recipe' },
  { name: 'python3', candidates: ['python3'], apt: 'python3', why: "the signature recipe's canonical JSON" },
  { name: 'promtool', candidates: ['promtool', '/usr/bin/promtool'], apt: 'prometheus', why: 'the metrics and alert rules checks' },
];

function found(candidates) {
  const dirs = (process.env.PATH ?? '').split(path.delimiter);
  return candidates.some((c) => {
    if (!c) return false;
    return (c.includes('/') ? [c] : dirs.map((d) => path.join(d, c))).some((p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  });
}

/** The prerequisites that are not installed. */
export function missingPrograms() {
  return PREREQUISITES.filter((p) => !found(p.candidates));
}

/** The one command that installs `missing` on Debian or Ubuntu. */
export function installCommand(missing) {
  return `sudo apt-get update && sudo apt-get install -y ${[...new Set(missing.map((p) => p.apt))].join(' ')}`;
}

function main() {
  let missing = missingPrograms();
  if (missing.length === 0) return 0;
  const names = missing.map((p) => `${p.name} (${p.why})`).join(', ');
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (root && found(['apt-get'])) {
    process.stderr.write(`npm test: installing what the suite needs: ${names}\n`);
    const packages = [...new Set(missing.map((p) => p.apt))];
    const run = (args) => spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
    if (run(['update', '-qq']) && run(['install', '-y', '-qq', ...packages])) missing = missingPrograms();
  }
  if (missing.length === 0) return 0;
  process.stderr.write(`npm test needs programs that are not installed: ${missing.map((p) => `${p.name} (${p.why})`).join(', ')}\ninstall them with:\n  ${installCommand(missing)}\n`);
  return 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) process.exitCode = main();
