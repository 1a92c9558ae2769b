/**
 * nachos-sentinel as a library, for the containers that subscribe to it:
 * the subjects, the payload types, and what checks a reload.
 */
export { SUBJECTS, SENTINEL_QUEUE, channelInbound, channelOutbound, toolCall, toolResult, envelopeType } from './topics.js';
export type { Envelope } from './bus/envelope.js';
export type { PolicyReloadPayload, PolicyRejectedPayload, ReloadReason } from './policy/announcements.js';
export type { HealthStatusPayload } from './bus/health-monitor.js';
export type { Transition } from './health/aggregator.js';
export type { Heartbeat, SentinelHeartbeat } from './health/heartbeat-payload.js';
export { computeRevision } from './policy/snapshot.js';
export { verifyReload, signedBytes, type ReloadSignature, type VerifyResult } from './policy/signature.js';
export { ReloadFilter } from './subscriber.js';
