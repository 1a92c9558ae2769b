/**
 * Every subject on the Nachos bus, in one place: the bus's own list and those
 * this project adds. The transfer subject's builder validates its token so a name can never change
 * the shape of a subject (a `.` adds a level, `*` and `>` are wildcards).
 */

/** The prefix every Nachos subject starts with. */
const PREFIX = 'nachos.';

export const SUBJECTS = {
  // The bus's own list (those the sentinel uses).
  policyReload: 'nachos.system.policy.reload',
  health: 'nachos.system.health',
  // Added by nachos-sentinel.
  /** A snapshot was rejected; the revision in force is unchanged. */
  policyRejected: 'nachos.system.policy.rejected',
  /** Request/reply: the snapshot in force. */
  policyCurrent: 'nachos.system.policy.current',
  /** A health transition of an instance, a component or the whole system. */
  healthChanged: 'nachos.system.health.changed',
  /** Request/reply: the aggregated health view. */
  healthStatus: 'nachos.system.health.status',
  /** Request/reply, operators only: put an earlier set back in force (`{revision}`), or end a rollback (`{release: true}`). */
  policyRollback: 'nachos.system.policy.rollback',
  /** Request/reply, operators only: a running (or halted) canary's set to everyone now. */
  policyPromote: 'nachos.system.policy.promote',
  /** Request/reply, operators only: stop a running canary; its canaries get the set in force back. */
  policyAbort: 'nachos.system.policy.abort',
  /** What a rollout did: a canary started, baked, was released, halted; a rollback. */
  policyRollout: 'nachos.system.policy.rollout',
} as const;

/** Subjects only an operator may publish on (deploy/nats-server.conf): every central sentinel acts on each request. */
export const OPERATOR_SUBJECTS = [SUBJECTS.policyRollback, SUBJECTS.policyPromote, SUBJECTS.policyAbort] as const;

/** Queue group shared by sentinel replicas, so one of them answers each request. */
export const SENTINEL_QUEUE = 'nachos-sentinel';

// Whitespace, the separator and both wildcards would change what a subject means.
const BAD_TOKEN = /[\s.*>]/;

/** Checks one subject token (an instance id); returns it, or throws. */
export function subjectToken(name: string, what = 'name'): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`${what} must be a non-empty string`);
  }
  if (BAD_TOKEN.test(name)) {
    throw new TypeError(`${what} "${name}" cannot be used in a subject: no whitespace, ".", "*" or ">"`);
  }
  return name;
}

/**
 * Request/reply: the parts of a reload body too large for one message, from
 * the sentinel instance that announced it (its instance id is the last token).
 */
export const policyTransfer = (instance: string) => `nachos.system.policy.transfer.${subjectToken(instance, 'instance id')}`;

const TRANSFER_PREFIX = 'nachos.system.policy.transfer.';

/** Whether `subject` is a transfer subject: the prefix and one token that is a plain name (no wildcard, no further level). */
export function isTransferSubject(subject: string): boolean {
  return subject.startsWith(TRANSFER_PREFIX) && /^[A-Za-z0-9_-]{1,128}$/.test(subject.slice(TRANSFER_PREFIX.length));
}

/** The envelope `type` of a subject: the subject without its `nachos.` prefix. */
export function envelopeType(subject: string): string {
  return subject.startsWith(PREFIX) ? subject.slice(PREFIX.length) : subject;
}
