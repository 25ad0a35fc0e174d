# syntax=docker/dockerfile:1
#
# Agentic Registry container image.
#   build stage   : full `npm ci` (dev deps included) + `npm run build` -> dist/ and gui/dist/
#   runtime stage : production deps only (`npm ci --omit=dev`) + dist/ + gui/dist/ (the admin GUI), runs as `node`
#
# Build:  docker build -t agentic-registry:local .
# Run:    docker run -p 3000:3000 -e DATABASE_URL=... -e REDIS_URL=... \
#           -e BOOTSTRAP_ADMIN_KEY=... -e SECRET_KEY=... agentic-registry:local

############################ build ############################
FROM node:24-bookworm-slim AS build
WORKDIR /app

# Dependency layer first so it is cached until the lockfile changes.
COPY package.json package-lock.json ./
# The npm workspace (packages/client, the client library): its manifest is part of the install.
COPY packages/client/package.json ./packages/client/
RUN npm ci --no-audit --no-fund

COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# The admin GUI (React + Vite) -> gui/dist, served by the service at /admin.
COPY gui ./gui
# The client library and its browser demo (-> examples/browser-demo/dist, served at /demo).
COPY packages ./packages
COPY examples ./examples
RUN npm run build

########################### runtime ###########################
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
WORKDIR /app

# Installed as root and left root-owned: the app user can read, not modify, its code.
COPY package.json package-lock.json ./
COPY packages/client/package.json ./packages/client/
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

COPY --from=build /app/dist ./dist
COPY --from=build /app/gui/dist ./gui/dist
COPY --from=build /app/examples/browser-demo/dist ./examples/browser-demo/dist

# Unprivileged user shipped by the official image (uid 1000).
USER node

EXPOSE 3000

# Slim images have no curl/wget: probe liveness with node's built-in fetch.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Exec-form CMD: node is PID 1 and receives SIGTERM directly, so the service's
# graceful shutdown (drain SSE/WebSocket streams, then exit) runs on `docker stop`.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
