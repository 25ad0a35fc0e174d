import { Global, Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { MetricsModule } from '../ops/metrics.module.js';
import { OutboxMetrics } from './outbox.metrics.js';
import { OutboxRepository } from './outbox.repository.js';
import { OutboxRetention } from './outbox.retention.js';
import { OutboxSequencer } from './outbox.sequencer.js';
import { SequencerLeadership } from './sequencer.leader.js';

@Global()
@Module({
  imports: [BusModule, MetricsModule],
  providers: [OutboxRepository, SequencerLeadership, OutboxSequencer, OutboxRetention, OutboxMetrics],
  exports: [OutboxRepository, SequencerLeadership, OutboxSequencer, OutboxRetention],
})
export class OutboxModule {}
