import { defineConfig } from 'vitest/config';

// Tests start the whole platform in-process on port 0; no test depends on a fixed port.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Generous: tests drive real clients (the AWS CLI v2 starts Python per call, ~1-5 s on a loaded
    // 2-core machine); a test that hangs still fails, just later.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
  },
});
