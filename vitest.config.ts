import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Names any program the suite needs that is missing, before the first test.
    globalSetup: ['test/prerequisites.ts'],
    // Each file in its own process: suites start servers and send signals.
    pool: 'forks',
    // Integration suites wait on real servers and file events; give them room on a busy machine.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Assertions about time are made in bench/, not here; a retry only covers a loaded CI box.
    retry: 0,
  },
});
