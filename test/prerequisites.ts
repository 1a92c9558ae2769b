import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/**
 * The suite's global setup: before anything runs, the programs it drives
 * from the outside must be there, and a missing one is named with what
 * installs it, rather than found an hour later as a timeout. `.ci/run`
 * installs them on Debian.
 */
const PREREQUISITES: { name: string; candidates: string[]; install: string; why: string }[] = [
  { name: 'nats-server', candidates: [process.env.NATS_SERVER_BIN ?? '', 'nats-server', '/usr/sbin/nats-server'], install: 'apt-get install nats-server', why: 'every bus test starts its own' },
  { name: 'chromium', candidates: [process.env.CHROMIUM_PATH ?? '', '/usr/bin/chromium'], install: 'apt-get install chromium', why: 'the status page test' },
  { name: 'tmux', candidates: ['tmux'], install: 'apt-get install tmux', why: 'the terminal view test' },
  { name: 'openssl', candidates: ['openssl'], install: 'apt-get install openssl', why: 'TLS certificates and the signature recipe' },
  { name: 'python3', candidates: ['python3'], install: 'apt-get install python3', why: 'the README\'s signature recipe' },
  { name: 'promtool', candidates: ['promtool', '/usr/bin/promtool'], install: 'apt-get install prometheus', why: 'the metrics and alert rules checks' },
];

function found(candidates: string[]): boolean {
  const dirs = (process.env.PATH ?? '').split(path.delimiter);
  return candidates.some((c) => {
    if (!c) return false;
    const paths = c.includes('/') ? [c] : dirs.map((d) => path.join(d, c));
    return paths.some((p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  });
}

export default function setup(): () => void {
  const missing = PREREQUISITES.filter((p) => !found(p.candidates));
  if (missing.length > 0) {
    const lines = missing.map((p) => `  ${p.name} (${p.why}): ${p.install}`);
    throw new Error(`the suite needs programs that are not installed:\n${lines.join('\n')}\n(.ci/run installs them on Debian)`);
  }
  // What is optional is said at the start and again in the summary: the tests that run Nachos' own code.
  const nachos = process.env.NACHOS_REPO
    ? `Nachos' own code: from NACHOS_REPO=${process.env.NACHOS_REPO}`
    : "Nachos' own code: NACHOS_REPO is not set, so the tests that run Nachos' PolicyLoader, validator and health server are SKIPPED (set it to a checkout or bare git directory of Nacho-Labs-LLC/nachos)";
  process.stdout.write(`${nachos}\n`);
  return () => process.stdout.write(`${nachos}\n`);
}
