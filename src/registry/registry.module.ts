import { Module } from '@nestjs/common';
import { EgressModule } from '../egress/egress.module.js';
import { AgentController } from './agents/agent.controller.js';
import { AgentRepository } from './agents/agent.repository.js';
import { AgentService } from './agents/agent.service.js';
import { HeaderSecrets } from './mcp-servers/header-secrets.js';
import { McpServerController } from './mcp-servers/mcp-server.controller.js';
import { McpServerRepository } from './mcp-servers/mcp-server.repository.js';
import { McpServerService } from './mcp-servers/mcp-server.service.js';
import { PromptController } from './prompts/prompt.controller.js';
import { PromptRepository } from './prompts/prompt.repository.js';
import { PromptService } from './prompts/prompt.service.js';
import { TrustRuleController } from './trust-rules/trust-rule.controller.js';
import { TrustRuleRepository } from './trust-rules/trust-rule.repository.js';
import { TrustRuleService } from './trust-rules/trust-rule.service.js';
import { RegistryWriter } from './registry.writer.js';

@Module({
  imports: [EgressModule],
  controllers: [AgentController, PromptController, McpServerController, TrustRuleController],
  providers: [
    RegistryWriter,
    AgentRepository,
    AgentService,
    PromptRepository,
    PromptService,
    HeaderSecrets,
    McpServerRepository,
    McpServerService,
    TrustRuleRepository,
    TrustRuleService,
  ],
  exports: [RegistryWriter, AgentRepository, PromptRepository, McpServerRepository, McpServerService, TrustRuleRepository],
})
export class RegistryModule {}
