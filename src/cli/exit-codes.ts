/**
 * Exit codes. Docker reserves 2 for itself, so in `--once` mode every failure,
 * a bad flag included, exits 1.
 */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;
