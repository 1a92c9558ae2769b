import { createHash } from 'node:crypto';
import type { Problem } from '../errors.js';
import { isTransferSubject } from '../protocol/topics.js';
import type { ReloadSignature } from './signature.js';
import type { MessageSignature } from '../trust/signed-message.js';
import { computeRevision, diffFiles, type FileChanges, type SnapshotFile } from './revision.js';
import type { Rejection, SkippedFile, Snapshot } from './snapshot.js';
import type { ParsedPolicy } from './validate.js';

/**
 * Bumped on any incompatible change to these payloads (2: files carry their bytes; signatures cover the
 * whole message; 3: every reload carries its deployment and an expiry, a policy.current reply is the
 * announcement in force itself).
 */
export const SCHEMA_VERSION = 3;
/**
 * A reload for an audience only (a canary), or for everyone but one: 4, and signed as v4, so that a
 * receiver that predates audiences, which would take the set whoever it is for, can never verify one
 * (see signature.ts).
 */
export const AUDIENCE_SCHEMA_VERSION = 4;

/**
 * Why a reload was announced:
 * - `startup`: the first announcement of this sentinel instance;
 * - `change`: a new valid snapshot;
 * - `reconnect`: the sentinel is back on the bus, and announces again what
 *   is in force, since the bus keeps nothing for subscribers that were cut off;
 * - `recovered`: after a rejection, the files are back to the revision in
 *   force (nothing changes for subscribers; a rejection they were told of is over);
 * - `refresh`: the set in force, signed again before its expiry, so that
 *   subscribers know it is still the one in force (see `expiresAt`);
 * - `rollback`: an earlier set put back in force (by an operator, or for the
 *   canaries of a set that halted): `replaces` names the set it replaces;
 * - `canary`: a new set for its `audience` only, before everyone else gets it.
 *
 * A reply on `nachos.system.policy.current` is the last of these, as announced.
 */
export type ReloadReason = 'startup' | 'change' | 'reconnect' | 'recovered' | 'refresh' | 'rollback' | 'canary';

/** A file as announced: its digest, and for a policy file its exact bytes. */
export interface AnnouncedFile extends SnapshotFile {
  /**
   * The file's bytes: the text itself when it is valid UTF-8 (every valid
   * policy file is), else base64 (`encoding: "base64"`). Absent for other
   * watched files (`kind: "config"`), whose contents never leave the daemon:
   * configuration holds secrets.
   */
  content?: string;
  encoding?: 'base64';
}

/** What a reload carries about the set itself: in the message, or fetched apart when too large (see `transfer`). */
export interface ReloadBody {
  files: AnnouncedFile[];
  /** Changes since `previous`. */
  changed: FileChanges;
  /** The validated policy documents, in path order. */
  policies: ParsedPolicy[];
  /** Keys the schema does not know, and the like: the set is valid with them. */
  warnings: Problem[];
  /** Files left out as invalid (invalid_files = "skip-file"), each with its problems. */
  skipped: SkippedFile[];
}

/** Where to fetch a body that did not fit in the message (see fetchReloadBody). */
export interface ReloadTransfer {
  /** Request subject of the sentinel instance that announced it. */
  subject: string;
  /** Hex SHA-256 of the body's bytes (JSON, UTF-8): signed with the rest of the message. */
  sha256: string;
  bytes: number;
  /** Ask for parts 0 to parts - 1, each `partBytes` long (the last may be shorter). */
  parts: number;
  partBytes: number;
}

/** Payload of `nachos.system.policy.reload` (and of replies on `nachos.system.policy.current`). */
export interface PolicyReloadPayload extends Partial<ReloadBody> {
  /** 3; 4 for a reload with an `audience`. */
  schemaVersion: typeof SCHEMA_VERSION | typeof AUDIENCE_SCHEMA_VERSION;
  /** SHA-256 over the set (see computeRevision). Subscribers can drop duplicates by revision. */
  revision: string;
  /** The revision this sentinel instance announced before this one, if any. */
  previous: string | null;
  /** 1 for the first revision this instance announces, +1 for each new one (repeats keep theirs). */
  sequence: number;
  reason: ReloadReason;
  /** When this message was made (ISO 8601, UTC, milliseconds); it orders reloads, across restarts of the sentinel too. */
  issuedAt: string;
  /**
   * Until when this statement holds (ISO 8601): the sentinel announces the set in force again
   * (`refresh`) well before. A receiver never takes an expired reload, and one that holds a set whose
   * newest statement has expired keeps it but says so (it may be cut off from a sentinel that moved on).
   */
  expiresAt: string;
  /** The deployment this set is for (`[trust] deployment`; "" when none is named): a receiver of another refuses it. */
  deployment: string;
  counts: { files: number; policyFiles: number; rules: number; warnings: number; skipped: number };
  /**
   * While a rollback is in force: the revision the policy directory holds, which this set stands in for
   * (the next change of the directory ends the rollback).
   */
  replaces?: string;
  /**
   * Who the set is for, when not everyone (a canary): component names, or `component/instance`. A
   * receiver outside it ignores the reload (ReloadFilter: "not for us"). Signed with the rest (v4).
   */
  audience?: string[];
  /**
   * Who the set is not for (while a canary runs, the set everyone else keeps excludes the canaries, so
   * that its refreshes never take them back): a receiver named here ignores it. Signed with the rest (v4).
   */
  excludes?: string[];
  /** Present instead of the body when the body would not fit the server's max_payload. */
  transfer?: ReloadTransfer;
  /** With a signing seed configured: Ed25519 over the whole message (see signature.ts). */
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
  warnings: Problem[];
  files: SnapshotFile[];
  /** What else could be done (reject-set mode: that skip-file exists). */
  hint?: string;
  /** Lists cut to fit the server's max_payload: how many of each were left out. */
  truncated?: { errors: number; warnings: number; files: number };
}

/** What a reload announcement is built from. */
export interface Announced {
  snapshot: Snapshot;
  sequence: number;
  previous: Snapshot | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A file's bytes as the announcement carries them: text as is, base64 otherwise. */
export function fileContent(bytes: Buffer): Pick<AnnouncedFile, 'content' | 'encoding'> {
  try {
    return { content: utf8.decode(bytes) };
  } catch {
    return { content: bytes.toString('base64'), encoding: 'base64' };
  }
}

/** The bytes of an announced file's content, or undefined when it carries none. */
export function contentBytes(file: Pick<AnnouncedFile, 'content' | 'encoding'>): Buffer | undefined {
  if (typeof file.content !== 'string') return undefined;
  return file.encoding === 'base64' ? Buffer.from(file.content, 'base64') : Buffer.from(file.content, 'utf8');
}

export function reloadBody(announced: Announced): ReloadBody {
  const { snapshot, previous } = announced;
  return {
    files: snapshot.files.map((f) => {
      const content = snapshot.contents.get(f.path);
      return content === undefined ? { ...f } : { ...f, content };
    }),
    changed: diffFiles(previous?.files ?? [], snapshot.files),
    policies: snapshot.policies,
    warnings: snapshot.warnings,
    skipped: snapshot.skipped,
  };
}

/** When and for whom a statement is made. */
export interface Issue {
  /** Wall-clock milliseconds. */
  issuedAt: number;
  /** How long it holds, in milliseconds. */
  validForMs: number;
  deployment: string;
  /** The revision the directory holds while a rollback stands in for it. */
  replaces?: string | undefined;
  /** Who the set is for, when not everyone. */
  audience?: readonly string[] | undefined;
  /** Who the set is not for. */
  excludes?: readonly string[] | undefined;
}

/** The reload payload without its body. */
export function reloadHead(announced: Announced, reason: ReloadReason, issue: Issue): PolicyReloadPayload {
  const { snapshot, previous, sequence } = announced;
  return {
    schemaVersion: issue.audience || issue.excludes ? AUDIENCE_SCHEMA_VERSION : SCHEMA_VERSION,
    revision: snapshot.revision,
    previous: previous?.revision ?? null,
    sequence,
    reason,
    issuedAt: new Date(issue.issuedAt).toISOString(),
    expiresAt: new Date(issue.issuedAt + issue.validForMs).toISOString(),
    deployment: issue.deployment,
    counts: {
      files: snapshot.files.length,
      policyFiles: snapshot.policies.length,
      rules: snapshot.ruleCount,
      warnings: snapshot.warnings.length,
      skipped: snapshot.skipped.length,
    },
    ...(issue.replaces !== undefined ? { replaces: issue.replaces } : {}),
    ...(issue.audience ? { audience: [...issue.audience] } : {}),
    ...(issue.excludes ? { excludes: [...issue.excludes] } : {}),
  };
}

export function rejectedPayload(rejection: Rejection, inForce: Snapshot | undefined, hint?: string): PolicyRejectedPayload {
  return {
    schemaVersion: SCHEMA_VERSION,
    revision: rejection.revision,
    inForce: inForce?.revision ?? null,
    errors: rejection.problems,
    warnings: rejection.warnings,
    files: rejection.files,
    ...(hint ? { hint } : {}),
  };
}

export type ConsistencyVerdict = { ok: true } | { ok: false; reason: 'revision mismatch' | 'content mismatch' | 'malformed' };

/**
 * What a subscriber checks before acting on a reload, signed or not: the
 * revision is the one its files hash to, and every file's bytes hash to its
 * announced SHA-256 and length. A head (body fetched apart) has nothing to check yet.
 */
export function checkConsistency(payload: unknown): ConsistencyVerdict {
  const p = payload as Partial<PolicyReloadPayload> | null;
  if (!p || typeof p !== 'object' || typeof p.revision !== 'string') return { ok: false, reason: 'malformed' };
  if (p.files === undefined && p.transfer !== undefined) return isTransfer(p.transfer) ? { ok: true } : { ok: false, reason: 'malformed' };
  if (!Array.isArray(p.files)) return { ok: false, reason: 'malformed' };
  const files = p.files as unknown[];
  if (!files.every((f) => typeof (f as AnnouncedFile)?.path === 'string' && typeof (f as AnnouncedFile)?.sha256 === 'string')) {
    return { ok: false, reason: 'malformed' };
  }
  if (computeRevision(files as AnnouncedFile[]) !== p.revision) return { ok: false, reason: 'revision mismatch' };
  for (const f of files as AnnouncedFile[]) {
    if (f.content === undefined) continue;
    const bytes = contentBytes(f);
    if (bytes === undefined || bytes.byteLength !== f.bytes || createHash('sha256').update(bytes).digest('hex') !== f.sha256) {
      return { ok: false, reason: 'content mismatch' };
    }
  }
  return { ok: true };
}

/**
 * A transfer a subscriber may act on: a request subject that is a sentinel's transfer subject and
 * nothing else (a forged head must not have a subscriber send requests, with its own credentials,
 * to any subject it names), and sizes that add up.
 */
function isTransfer(t: unknown): t is ReloadTransfer {
  const { subject, sha256, bytes, parts, partBytes } = (t ?? {}) as Partial<ReloadTransfer>;
  return (
    typeof subject === 'string' &&
    isTransferSubject(subject) &&
    typeof sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(sha256) &&
    Number.isSafeInteger(bytes) &&
    (bytes as number) >= 0 &&
    Number.isSafeInteger(partBytes) &&
    (partBytes as number) > 0 &&
    parts === Math.ceil((bytes as number) / (partBytes as number))
  );
}

/** What the rollout says on `nachos.system.policy.rollout`. */
export type RolloutEventName = 'canary' | 'baking' | 'released' | 'halted' | 'promoted' | 'aborted' | 'rollback' | 'release';

export interface RolloutEvent {
  schemaVersion: 1;
  event: RolloutEventName;
  revision: string;
  /** The revision in force for everyone before it. */
  previous: string | null;
  /** Who the event's set went to: null for everyone. */
  audience: string[] | null;
  /** In words: "halted: gateway-canary/ab12 unhealthy 4 s after delivery of 3f2a…: llm error". */
  message: string;
  at: string;
  /** With a signing seed: Ed25519 over the whole event (prefix `nachos-sentinel rollout v1`). */
  signature?: MessageSignature;
}

