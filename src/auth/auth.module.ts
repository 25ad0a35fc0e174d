import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { BusModule } from '../bus/bus.module.js';
import { MetricsModule } from '../ops/metrics.module.js';
import { ApiKeyRepository } from './api-key.repository.js';
import { ApiKeyService } from './api-key.service.js';
import { ApiKeysController, AuthController, UsersController } from './auth.controller.js';
import { AuthGuard } from './auth.guard.js';
import { Authenticator } from './authenticator.js';
import { CredentialCache } from './credential-cache.js';
import { CredentialWatcher } from './credential-watcher.js';
import { LoginThrottle } from './login-throttle.js';
import { MetricsAccess } from './metrics-access.js';
import { PasswordHasher } from './password-hasher.js';
import { UserRepository } from './user.repository.js';
import { UserService } from './user.service.js';

/**
 * Authentication (API keys, sessions), the global guard, and the
 * CredentialWatcher that streams, sockets and the gateway register with:
 * modules that hold connections open import it.
 */
@Module({
  imports: [BusModule, MetricsModule],
  controllers: [AuthController, ApiKeysController, UsersController],
  providers: [
    ApiKeyRepository,
    ApiKeyService,
    UserRepository,
    UserService,
    PasswordHasher,
    LoginThrottle,
    CredentialCache,
    CredentialWatcher,
    Authenticator,
    MetricsAccess,
    AuthGuard,
    { provide: APP_GUARD, useExisting: AuthGuard },
  ],
  exports: [ApiKeyService, UserService, Authenticator, CredentialWatcher, MetricsAccess, AuthGuard],
})
export class AuthModule {}
