import { Module } from '@nestjs/common';
import { fileURLToPath } from 'node:url';
import { DemoAssets, DemoController } from './demo.controller.js';

/** Where `npm run build` writes the demo: `<repo>/examples/browser-demo/dist`, two levels above this file in `src/` and in `dist/`. */
export const DEFAULT_DEMO_DIR = fileURLToPath(new URL('../../examples/browser-demo/dist/', import.meta.url));

/** Serves the client library's browser demo (examples/browser-demo, built by `npm run build`) at `/demo`. */
@Module({
  controllers: [DemoController],
  providers: [{ provide: DemoAssets, useFactory: () => new DemoAssets(DEFAULT_DEMO_DIR) }],
})
export class DemoModule {}
