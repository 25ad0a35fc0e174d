import { Module } from '@nestjs/common';
import { AdminAssets } from './admin-assets.js';
import { AdminUiController } from './admin-ui.controller.js';

/** Serves the admin GUI (gui/, built by `npm run build`) at `/admin`. */
@Module({
  controllers: [AdminUiController],
  providers: [{ provide: AdminAssets, useFactory: () => new AdminAssets() }],
})
export class AdminUiModule {}
