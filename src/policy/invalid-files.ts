/**
 * What an invalid file does to the set: `reject-set` refuses the whole new set
 * (the last good one stays in force); `skip-file` leaves the invalid files out
 * and takes the rest, as Nachos' own loader does, but says so.
 */
export const INVALID_FILE_MODES = ['reject-set', 'skip-file'] as const;
export type InvalidFileMode = (typeof INVALID_FILE_MODES)[number];

/** Told with every rejection in reject-set mode: the other way exists. */
export const SKIP_FILE_HINT =
  'to load the valid files and leave out the invalid ones, as Nachos\' own loader does, set [policy] invalid_files = "skip-file" (--invalid-files skip-file, SENTINEL_INVALID_FILES)';
