import { type DynamicModule, Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { createDataSource, migrate } from './data-source.js';

export const DATABASE_URL = Symbol('DATABASE_URL');

/** Closes the pool last: services stop their work in beforeApplicationShutdown. */
@Injectable()
class DataSourceCloser implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}

@Global()
@Module({})
export class DatabaseModule {
  /** `url` is resolved before the app starts (embedded PostgreSQL or DATABASE_URL). */
  static forRoot(url: string): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [
        { provide: DATABASE_URL, useValue: url },
        {
          provide: DataSource,
          inject: [APP_CONFIG],
          useFactory: async (config: AppConfig) => {
            const dataSource = createDataSource(url, config.databasePoolSize, `registry-${config.replicaId.slice(0, 8)}`);
            await dataSource.initialize();
            await migrate(dataSource);
            return dataSource;
          },
        },
        DataSourceCloser,
      ],
      exports: [DATABASE_URL, DataSource],
    };
  }
}
