/**
 * The reason of an `unknown` overall status while a sentinel waits, for at most one interval after it
 * (re)connected, for the components of its roster to be heard: a probe may wait it out. A wire
 * contract between the aggregator and the probe, in a module of its own so the probe loads nothing else.
 */
export const GRACE_REASON = 'within the first interval after connecting';
