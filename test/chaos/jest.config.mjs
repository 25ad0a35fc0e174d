// The chaos suite runs on its own (`npm run chaos`), never under `npm test`:
// it starts its own PostgreSQL, Redis, replicas and nginx, and takes ~2 minutes.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from '../../jest.config.mjs';

const rootDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export default {
  rootDir,
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
  testMatch: ['<rootDir>/test/chaos/**/*.chaos.ts'],
  // Setup (~15 s) + writes (60 s) + quiescence (<= 40 s) + teardown, with room.
  testTimeout: 240_000,
  maxWorkers: 1,
  // Every process the suite starts is ended by pid in its finally block; a stray
  // keep-alive socket of the fetch client must not hold CI for minutes.
  forceExit: true,
};
