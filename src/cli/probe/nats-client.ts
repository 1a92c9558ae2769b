/**
 * What the probe needs from the NATS client. The build bundles this into one
 * CommonJS file (dist/cli/nats-client.cjs) that loads in about half the time
 * of the package's many modules; see once.ts.
 */
export { connect, credsAuthenticator, nkeyAuthenticator, nuid } from '@nats-io/transport-node';
