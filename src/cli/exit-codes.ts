/**
 * Exit codes. `rollout status` exits PENDING (3) while the rollout is not
 * complete (without --wait) or when its --timeout passed first. Docker reserves 2 for itself, so in `--once` mode every failure,
 * a bad flag included, exits 1.
 */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, PENDING: 3 } as const;
