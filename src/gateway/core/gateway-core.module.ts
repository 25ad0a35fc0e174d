import { Module } from '@nestjs/common';
import { AuthModule } from '../../auth/auth.module.js';
import { EgressModule } from '../../egress/egress.module.js';
import { HealthModule } from '../../health/health.module.js';
import { MetricsModule } from '../../ops/metrics.module.js';
import { StreamingModule } from '../../streaming/streaming.module.js';
import { BackendConnector } from './backend-connector.js';
import { GatewayCallers } from './gateway-caller.js';
import { GatewayCalls } from './gateway-metrics.js';
import { GatewayPolicy } from './gateway-policy.js';

/**
 * The MCP gateway's shared core, used by every way in (streaming sessions,
 * tool streams, `/mcp`): who is calling (GatewayCallers), what they may reach
 * (GatewayPolicy), MCP client sessions with the backends (BackendConnector)
 * and the attribution of every call (GatewayCalls). Namespacing is plain
 * functions (namespacing.ts).
 */
@Module({
  imports: [AuthModule, EgressModule, HealthModule, MetricsModule, StreamingModule],
  providers: [GatewayCallers, GatewayPolicy, BackendConnector, GatewayCalls],
  exports: [GatewayCallers, GatewayPolicy, BackendConnector, GatewayCalls],
})
export class GatewayCoreModule {}
