/**
 * What an invalid file does to the set: `reject-set` refuses the whole new set
 * (the last good one stays in force); `skip-file` leaves each invalid file out
 * and takes the rest, and says so. Nachos' own loader also loads file by file,
 * but it refuses fewer files than the sentinel: each problem says what Nachos
 * does with its file.
 */
export const INVALID_FILE_MODES = ['reject-set', 'skip-file'] as const;
export type InvalidFileMode = (typeof INVALID_FILE_MODES)[number];

/** Told with every rejection in reject-set mode: the other way exists. */
export const SKIP_FILE_HINT =
  'to take the valid files and leave each invalid one out (each problem says what Nachos\' own loader does with its file), set [policy] invalid_files = "skip-file" (--invalid-files skip-file, SENTINEL_INVALID_FILES)';
