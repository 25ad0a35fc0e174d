import { Body, Controller, Get, HttpCode, Inject, Injectable, Post } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { actorOf, CurrentPrincipal, type Principal, RequireRole } from '../auth/principal.js';
import { ZodPipe } from '../common/zod-validation.pipe.js';
import { rows } from '../database/sql.js';
import { NOTICE_KINDS, type NoticeKind } from '../events/socket-protocol.js';
import { RegistryWriter } from '../registry/registry.writer.js';

export interface Notice {
  id: string;
  kind: NoticeKind;
  message: string;
  createdBy: string | null;
  createdAt: string;
  expiresAt: string | null;
}

interface NoticeRow {
  id: string;
  kind: NoticeKind;
  message: string;
  created_by: string | null;
  created_at: Date;
  expires_at: Date | null;
}

const toNotice = (r: NoticeRow): Notice => ({
  id: r.id,
  kind: r.kind,
  message: r.message,
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
  expiresAt: r.expires_at?.toISOString() ?? null,
});

const DAY_MS = 24 * 3600 * 1000;

export const createNoticeSchema = z.strictObject({
  kind: z.enum(NOTICE_KINDS),
  message: z.string().trim().min(1).max(1000),
  /** ISO time in the future, at most 30 days ahead; none: active until a newer notice replaces it in the GUI. */
  expiresAt: z
    .string()
    .datetime({ offset: true })
    .refine((v) => Date.parse(v) > Date.now(), 'must be in the future')
    .refine((v) => Date.parse(v) < Date.now() + 30 * DAY_MS, 'must be within 30 days')
    .optional(),
});

/**
 * Admin notices. Posting one stores it and appends its `system.alert` /
 * `system.maintenance` event in the same transaction, so it is numbered,
 * published and resumable like every change: a GUI that reconnects with its
 * cursor still gets it, and `GET /notices` lists the active ones for a GUI that
 * starts fresh.
 */
@Injectable()
export class NoticeService {
  constructor(
    private readonly writer: RegistryWriter,
    private readonly dataSource: DataSource,
  ) {}

  async create(input: z.infer<typeof createNoticeSchema>, actor: string): Promise<Notice> {
    return this.writer.write(async (w) => {
      const [row] = await rows<NoticeRow>(w.m, 'INSERT INTO notices (kind, message, created_by, expires_at) VALUES ($1, $2, $3, $4) RETURNING *', [
        input.kind,
        input.message,
        actor,
        input.expiresAt ?? null,
      ]);
      const notice = toNotice(row);
      await w.append({ type: notice.kind, id: notice.id, actor, data: { message: notice.message, expiresAt: notice.expiresAt } });
      return notice;
    });
  }

  /** Notices not yet expired, newest first (at most 20). */
  async active(): Promise<Notice[]> {
    const found = await rows<NoticeRow>(
      this.dataSource.manager,
      'SELECT * FROM notices WHERE expires_at IS NULL OR expires_at > now() ORDER BY created_at DESC LIMIT 20',
    );
    return found.map(toNotice);
  }
}

@Controller('api/v1')
export class NoticesController {
  constructor(@Inject(NoticeService) private readonly notices: NoticeService) {}

  @Post('admin/notices')
  @RequireRole('admin')
  @HttpCode(201)
  async create(@Body(new ZodPipe(createNoticeSchema)) body: z.infer<typeof createNoticeSchema>, @CurrentPrincipal() principal: Principal): Promise<Notice> {
    return this.notices.create(body, actorOf(principal));
  }

  /** Active notices, for every role (the GUI's banner at load). */
  @Get('notices')
  async list(): Promise<{ items: Notice[] }> {
    return { items: await this.notices.active() };
  }
}
