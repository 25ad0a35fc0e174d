import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyRepository } from './api-key.repository.js';
import { ApiKeyService } from './api-key.service.js';
import { ApiKeysController, AuthController, UsersController } from './auth.controller.js';
import { AuthGuard } from './auth.guard.js';
import { Authenticator } from './authenticator.js';
import { CredentialWatcher } from './credential-watcher.js';
import { LoginThrottle } from './login-throttle.js';
import { MetricsAccess } from './metrics-access.js';
import { PasswordHasher } from './password-hasher.js';
import { UserRepository } from './user.repository.js';
import { UserService } from './user.service.js';

/** Global: streams, sockets and the gateway authenticate with Authenticator and register with CredentialWatcher. */
@Global()
@Module({
  controllers: [AuthController, ApiKeysController, UsersController],
  providers: [
    ApiKeyRepository,
    ApiKeyService,
    UserRepository,
    UserService,
    PasswordHasher,
    LoginThrottle,
    CredentialWatcher,
    Authenticator,
    MetricsAccess,
    AuthGuard,
    { provide: APP_GUARD, useExisting: AuthGuard },
  ],
  exports: [ApiKeyService, UserService, Authenticator, CredentialWatcher, MetricsAccess, AuthGuard],
})
export class AuthModule {}
