import { type DynamicModule, Global, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from './app-config.js';

/**
 * The validated configuration (APP_CONFIG). Global on purpose, like
 * @nestjs/config's `isGlobal`: its value comes from the entry point
 * (`createApp(config)`), so only the root can build it, and nearly every
 * provider reads it.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return { module: ConfigModule, providers: [{ provide: APP_CONFIG, useValue: config }], exports: [APP_CONFIG] };
  }
}
