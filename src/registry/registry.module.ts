import { Module } from '@nestjs/common';
import { AgentController } from './agents/agent.controller.js';
import { AgentRepository } from './agents/agent.repository.js';
import { AgentService } from './agents/agent.service.js';

@Module({
  controllers: [AgentController],
  providers: [AgentRepository, AgentService],
  exports: [AgentRepository],
})
export class RegistryModule {}
