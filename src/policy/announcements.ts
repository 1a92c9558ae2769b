import type { Problem } from '../errors.js';
import type { ReloadSignature, ReloadSigner } from './signature.js';
import { diffFiles, type FileChanges, type Rejection, type Snapshot, type SnapshotFile } from './snapshot.js';
import type { ParsedPolicy } from './validate.js';

/** Bumped on any incompatible change to these payloads. */
export const SCHEMA_VERSION = 1;

/**
 * Why a reload was announced:
 * - `startup`: the first announcement of this sentinel instance;
 * - `change`: a new valid snapshot;
 * - `reconnect`: the sentinel is back on the bus, and announces again what
 *   is in force, since the bus keeps nothing for subscribers that were cut off;
 * - `request`: an answer on `nachos.system.policy.current`.
 */
export type ReloadReason = 'startup' | 'change' | 'reconnect' | 'request';

/** Payload of `nachos.system.policy.reload` (and of replies on `nachos.system.policy.current`). */
export interface PolicyReloadPayload {
  schemaVersion: typeof SCHEMA_VERSION;
  /** SHA-256 over the set (see computeRevision). Subscribers can drop duplicates by revision. */
  revision: string;
  /** The revision this sentinel instance announced before this one, if any. */
  previous: string | null;
  /** 1 for the first revision this instance announces, +1 for each new one (repeats keep theirs). */
  sequence: number;
  reason: ReloadReason;
  files: SnapshotFile[];
  /** Changes since `previous`. */
  changed: FileChanges;
  counts: { files: number; policyFiles: number; rules: number };
  /** The validated policy documents, in path order; absent when too large for the bus. */
  policies?: ParsedPolicy[];
  /** Why `policies` is absent. Read the files from the shared volume instead. */
  policiesOmitted?: { reason: 'max_payload'; bytes: number; maxPayload: number };
  /** With a signing seed configured: Ed25519 over the revision and file hashes (see signature.ts). */
  signature?: ReloadSignature;
}

/** Payload of `nachos.system.policy.rejected`. */
export interface PolicyRejectedPayload {
  schemaVersion: typeof SCHEMA_VERSION;
  /** The refused set's revision (over the files that could be read). */
  revision: string;
  /** The revision still in force, or null when none has been valid yet. */
  inForce: string | null;
  errors: Problem[];
  files: SnapshotFile[];
}

/** What a reload announcement is built from. */
export interface Announced {
  snapshot: Snapshot;
  sequence: number;
  previous: Snapshot | undefined;
}

/** The reload payload, the policy set included (the announcer leaves it out when the message would be too big). */
export function reloadPayload(announced: Announced, reason: ReloadReason, signer?: ReloadSigner): PolicyReloadPayload {
  const { snapshot, previous, sequence } = announced;
  const payload: PolicyReloadPayload = {
    schemaVersion: SCHEMA_VERSION,
    revision: snapshot.revision,
    previous: previous?.revision ?? null,
    sequence,
    reason,
    files: snapshot.files,
    changed: diffFiles(previous?.files ?? [], snapshot.files),
    counts: {
      files: snapshot.files.length,
      policyFiles: snapshot.policies.length,
      rules: snapshot.ruleCount,
    },
    policies: snapshot.policies,
  };
  if (signer) payload.signature = signer.sign(snapshot.revision, snapshot.files);
  return payload;
}

export function rejectedPayload(rejection: Rejection, inForce: Snapshot | undefined): PolicyRejectedPayload {
  return {
    schemaVersion: SCHEMA_VERSION,
    revision: rejection.revision,
    inForce: inForce?.revision ?? null,
    errors: rejection.problems,
    files: rejection.files,
  };
}
