import { Module } from '@nestjs/common';
import { ChangesController } from './changes.controller.js';
import { EventsController } from './events.controller.js';
import { SseStreamService } from './sse-stream.service.js';
import { StreamHub } from './stream.hub.js';

@Module({
  controllers: [ChangesController, EventsController],
  providers: [StreamHub, SseStreamService],
  exports: [StreamHub, SseStreamService],
})
export class StreamingModule {}
