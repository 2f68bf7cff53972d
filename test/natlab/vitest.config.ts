import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** The NAT lab only (root, Linux network namespaces): `npm run test:natlab`. */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/natlab/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // One lab at a time: the cases measure timings, and each builds its own namespaces.
    fileParallelism: false,
  },
});
