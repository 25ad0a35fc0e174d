import { rmSync } from 'node:fs';

export default async function globalTeardown() {
  const state = globalThis.__registryTest;
  if (!state) return;
  state.redis.kill('SIGTERM');
  await state.pg.stop().catch(() => {});
  rmSync(state.root, { recursive: true, force: true });
}
