import { resolveConfig } from '../src/config/resolve.js';

/**
 * The daemon's own defaults, as it resolves them with nothing configured:
 * the benchmarks take their targets and shapes from these (the quiet window,
 * the heartbeat interval, the instance cap), never from numbers of their own.
 */
export const DEFAULTS = resolveConfig({ flags: {}, env: {}, cwd: process.cwd() });
