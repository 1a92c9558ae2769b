import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { BusListener } from '../helpers/bus-listener.js';
import { Daemon } from '../helpers/daemon.js';
import { it } from '../helpers/fixtures.js';
import { policyText } from '../helpers/policy-files.js';
import { shellRevision } from '../helpers/revision.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';

/** An unprivileged user, so that file permissions apply (root reads anything). */
const NOBODY = { uid: 65534, gid: 65534 };

describe('hostile files in the policy directory', () => {
  let listener: BusListener;
  let daemon: Daemon;
  let root: string;
  let dir: string;
  let cleanup: () => void;
  let good: string;

  // One daemon for the whole file, as nobody: each test makes the directory hostile, then undoes it.
  it.beforeAll(async ({ server }) => {
    ({ dir: root, cleanup } = tempDir());
    dir = path.join(root, 'policies');
    mkdirSync(dir);
    chmodSync(root, 0o755);
    chmodSync(dir, 0o755);
    writeFileSync(path.join(dir, 'a.toml'), policyText('a1'));
    chmodSync(path.join(dir, 'a.toml'), 0o644);
    listener = await BusListener.start(server.url, [SUBJECTS.policyReload, SUBJECTS.policyRejected]);
    // Run as nobody from a copy nobody can read: the checkout may sit in a private home directory.
    const copy = Daemon.readableCopy(path.join(root, 'sentinel'));
    daemon = Daemon.start(['--servers', server.url, '--policies', dir, '--max-file-size', '4KiB'], {}, root, NOBODY, copy);
    await listener.waitFor(SUBJECTS.policyReload, 1, 10_000);
    good = shellRevision(dir);
  });
  it.afterAll(async () => {
    await daemon.stop();
    await listener.close();
    cleanup();
  });

  /** Makes the directory hostile with `make`, expects a rejection with `code`, then undoes it. */
  async function rejectsThenRecovers(make: () => void, undo: () => void, code: string, message: RegExp) {
    const before = listener.on(SUBJECTS.policyRejected).length;
    make();
    const rejection = await until(() => listener.on(SUBJECTS.policyRejected)[before], 10_000, `a rejection (${code})`);
    expect(rejection.payload).toMatchObject({ inForce: good, errors: [{ code }] });
    expect((rejection.payload.errors as { message: string }[])[0]?.message).toMatch(message);
    undo();
    // The recovery is announced: a reload of the revision in force, with reason "recovered".
    await until(() => listener.on(SUBJECTS.policyReload).length > before + 1, 10_000, 'the recovery');
    expect(listener.on(SUBJECTS.policyReload).at(-1)?.payload).toMatchObject({ reason: 'recovered', revision: good });
    // The revision in force never moved: no reload was announced for a hostile set.
    expect(new Set(listener.on(SUBJECTS.policyReload).map((e) => e.payload.revision))).toEqual(new Set([good]));
  }

  it('refuses a file over the size cap', async () => {
    const big = path.join(dir, 'big.toml');
    await rejectsThenRecovers(() => writeFileSync(big, `# ${'x'.repeat(8192)}\n`), () => unlinkSync(big), ERROR_CODES.POLICY_TOO_LARGE, /over the size cap of 4096 bytes/);
  });

  it('refuses a symlink that leads outside the directory', async () => {
    const link = path.join(dir, 'passwd.toml');
    await rejectsThenRecovers(() => symlinkSync('/etc/passwd', link), () => unlinkSync(link), ERROR_CODES.POLICY_OUTSIDE_DIR, /outside the policy directory/);
  });

  it('refuses a FIFO without ever blocking on it', async () => {
    const fifo = path.join(dir, 'pipe.toml');
    await rejectsThenRecovers(() => execFileSync('mkfifo', [fifo]), () => rmSync(fifo), ERROR_CODES.POLICY_NOT_FILE, /a FIFO/);
  });

  it('refuses a device file', async () => {
    const device = path.join(dir, 'null.toml');
    await rejectsThenRecovers(() => execFileSync('mknod', [device, 'c', '1', '3']), () => rmSync(device), ERROR_CODES.POLICY_NOT_FILE, /a device/);
  });

  it('refuses a file it may not read', async () => {
    const locked = path.join(dir, 'locked.toml');
    await rejectsThenRecovers(
      () => {
        writeFileSync(locked, policyText('locked'));
        chmodSync(locked, 0o000);
      },
      () => unlinkSync(locked),
      ERROR_CODES.POLICY_READ,
      /permission denied/,
    );
  });

  it('recovers from a directory it may not read once a chmod fixes it, though a chmod makes no file event', async () => {
    await rejectsThenRecovers(
      () => chmodSync(dir, 0o311),
      () => chmodSync(dir, 0o755),
      ERROR_CODES.POLICY_DIR_MISSING,
      /cannot be read: .*permission denied/,
    );
  });

  it('still serves after all of that, and takes the next valid change', async () => {
    const reply = await listener.nc.request(SUBJECTS.policyCurrent, '', { timeout: 2000 });
    expect(reply.json<{ payload: { revision: string } }>().payload.revision).toBe(good);
    writeFileSync(path.join(dir, 'b.toml'), policyText('b1'));
    chmodSync(path.join(dir, 'b.toml'), 0o644);
    const next = shellRevision(dir);
    await until(() => listener.on(SUBJECTS.policyReload).some((e) => e.payload.revision === next), 10_000, 'the next valid change');
    expect(listener.on(SUBJECTS.policyReload).at(-1)?.payload).toMatchObject({ revision: next, reason: 'change' });
    expect(daemon.exit).toBeUndefined();
  });
});
