// NestJS 12 is ESM-only, so jest runs in ESM mode (NODE_OPTIONS=--experimental-vm-modules,
// set by scripts/run.mjs). ts-jest only transpiles (isolatedModules); `npm run typecheck` type-checks.
/** Also used by the chaos suite's config (test/chaos/jest.config.mjs). */
export const transform = {
  '^.+\\.ts$': [
    'ts-jest',
    {
      useESM: true,
      tsconfig: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2023',
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
        isolatedModules: true,
        types: ['node', 'jest'],
      },
    },
  ],
};
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
};

export default {
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  testTimeout: 60_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
    // The client library's own tests (packages/client): real local HTTP servers, no service.
    { ...common, displayName: 'client', testMatch: ['<rootDir>/packages/client/test/**/*.spec.ts'] },
  ],
};
