import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Agent } from 'undici';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { createEgressDispatcher, type EgressFetch, egressFetch } from './egress.dispatcher.js';
import { EgressPolicy } from './egress.policy.js';

/**
 * Outbound HTTP to MCP servers, for the health module and the gateway: every
 * request goes through `fetch` (or `dispatcher`) here, which applies the
 * egress policy to each resolved address at connect time.
 */
@Injectable()
export class EgressClient implements OnApplicationShutdown {
  readonly policy: EgressPolicy;
  readonly dispatcher: Agent;
  readonly fetch: EgressFetch;
  /** The largest message read from an MCP server (MCP_MAX_MESSAGE_BYTES): `fetch` bounds its bodies with it. */
  readonly maxMessageBytes: number;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.policy = new EgressPolicy({ allowPrivateNetworks: config.security.mcpAllowPrivateNetworks });
    this.dispatcher = createEgressDispatcher(this.policy);
    this.maxMessageBytes = config.security.mcpMaxMessageBytes;
    this.fetch = egressFetch(this.dispatcher, this.maxMessageBytes);
  }

  /** Registration-time check of an MCP server URL's literal host: 400 naming `field`. */
  assertRegistrable(url: string, field = 'url'): void {
    const reason = this.policy.urlRefusal(url);
    if (reason) throw DomainError.field(field, reason);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.dispatcher.close();
  }
}

/** Global: imported once (by RegistryModule), used by the registry, health probes and the gateway. */
@Global()
@Module({ providers: [EgressClient], exports: [EgressClient] })
export class EgressModule {}
