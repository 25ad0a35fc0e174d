import { Global, Module } from '@nestjs/common';
import { OutboxRepository } from './outbox.repository.js';
import { OutboxRetention } from './outbox.retention.js';
import { OutboxSequencer } from './outbox.sequencer.js';

@Global()
@Module({
  providers: [OutboxRepository, OutboxSequencer, OutboxRetention],
  exports: [OutboxRepository, OutboxSequencer, OutboxRetention],
})
export class OutboxModule {}
