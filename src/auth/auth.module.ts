import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyService } from './api-key.service.js';
import { ApiKeysController, AuthController, UsersController } from './auth.controller.js';
import { AuthGuard } from './auth.guard.js';
import { UserService } from './user.service.js';

@Module({
  controllers: [AuthController, ApiKeysController, UsersController],
  providers: [ApiKeyService, UserService, AuthGuard, { provide: APP_GUARD, useExisting: AuthGuard }],
  exports: [ApiKeyService, UserService, AuthGuard],
})
export class AuthModule {}
