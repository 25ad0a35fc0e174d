import { Global, Module } from '@nestjs/common';
import { OutboxRepository } from './outbox.repository.js';
import { OutboxRetention } from './outbox.retention.js';
import { OutboxSequencer } from './outbox.sequencer.js';
import { SequencerLeadership } from './sequencer.leader.js';

@Global()
@Module({
  providers: [OutboxRepository, SequencerLeadership, OutboxSequencer, OutboxRetention],
  exports: [OutboxRepository, SequencerLeadership, OutboxSequencer, OutboxRetention],
})
export class OutboxModule {}
