/**
 * nachos-sentinel as a library, for the containers that subscribe to it:
 * the subjects, the payload types, and what checks a reload.
 */
export { SUBJECTS, SENTINEL_QUEUE, envelopeType } from './protocol/topics.js';
export type { Envelope } from './protocol/envelope.js';
export type { AnnouncedFile, PolicyReloadPayload, PolicyRejectedPayload, ReloadBody, ReloadReason, ReloadTransfer } from './policy/announcements.js';
export { contentBytes } from './policy/announcements.js';
export type { HealthStatusPayload } from './health/status-payload.js';
export type { Transition } from './health/aggregator.js';
export type { Heartbeat, SentinelHeartbeat } from './health/heartbeat-payload.js';
export { computeRevision } from './policy/revision.js';
export { signedBytes, SIGNED_PREFIX, type ReloadSignature } from './policy/signature.js';
export { canonicalJson } from './trust/canonical-json.js';
export { verifyReload, type VerifyResult } from './subscriber/verify-reload.js';
export { ReloadFilter, type FilterVerdict, type FilterReason } from './subscriber/reload-filter.js';
export { ReloadApplier, PermanentRefusal, type ApplierEvent, type WholeReload } from './subscriber/reload-applier.js';
export { isPublicKey } from './trust/nkey.js';
export { fetchReloadBody, type Requester } from './subscriber/fetch-reload-body.js';
