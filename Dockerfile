# syntax=docker/dockerfile:1
#
# Ratchet server image: the compiled server (dist/, built with tsdown) on SQLite in /data.
#
#   docker build -t localhost/ratchet .
#   (podman: podman build --network=host --format docker -t localhost/ratchet . ; --format docker
#    keeps the HEALTHCHECK, which podman's default OCI format drops)
#   docker run -p 8787:8787 -e RATCHET_API_KEYS=admin:<secret of 16+ chars> -v ratchet-data:/data \
#     --stop-timeout 45 localhost/ratchet
#
# RATCHET_API_KEYS is required in a container: without keys the server only listens on
# 127.0.0.1, which is unreachable from outside the container.
#
# Your own tasks: bind-mount their folder under /app (so packages resolve from /app/node_modules)
# and point RATCHET_TASKS at the module, e.g.
#   -v "$PWD/tasks:/app/tasks:ro" -e RATCHET_TASKS=/app/tasks/index.ts
# A .ts module is compiled as it loads (tsx, a dependency of @ratchet/server); a .js module
# loads as it is. It may only import packages present in this image (zod, @ratchet/core,
# @ratchet/orpc, node built-ins, ...). For other dependencies build FROM this image and install
# them, or build your own image from your project (see docs/deployment.md). Without
# RATCHET_TASKS the server runs the example tasks (apps/server/dist/example-tasks.js).

# ---- build: install, compile, then drop what the runtime does not need ----
FROM node:20-bookworm-slim AS build
# better-sqlite3 is compiled here by node-gyp.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# Manifests first, so the install layer is reused until a manifest or the lockfile changes.
COPY package.json package-lock.json .npmrc ./
COPY packages/core/package.json packages/core/
COPY packages/storage/package.json packages/storage/
COPY packages/contract/package.json packages/contract/
COPY packages/client/package.json packages/client/
COPY packages/orpc/package.json packages/orpc/
COPY packages/testing/package.json packages/testing/
COPY apps/server/package.json apps/server/
COPY apps/dashboard/package.json apps/dashboard/
# Workspaces of the repository (npm ci needs every workspace's manifest); not in the image.
COPY examples/webapp/package.json examples/webapp/
COPY examples/serverless/package.json examples/serverless/
# The whole lockfile, dev dependencies included (tsdown builds below): exact versions and
# integrity. The native module is checked at once.
RUN npm ci --no-audit --no-fund \
  && node -e "require('better-sqlite3')(':memory:').close()"

# Sources, then the build: every package's dist/ (ESM + .d.ts), and the dashboard (Vite) into
# apps/server/dist/dashboard, which the server serves at /.
COPY tsconfig.base.json tsconfig.json tsdown.config.ts ./
COPY packages ./packages
COPY apps ./apps
RUN npm run build

# Production dependencies only (eslint, vitest, typescript, tsdown, drizzle-kit, ... go; tsx
# stays: @ratchet/server depends on it to load TypeScript tasks modules). Prune only deletes,
# so nothing is resolved outside the lockfile. better-sqlite3 keeps only its compiled addon
# (its C sources and object files are ~26 MB). Then /out gets what the runtime needs of each
# workspace package: package.json, dist/ and storage's migrations (node_modules/@ratchet/* are
# links to them). The example apps' and the dashboard's links go: they are not in the image
# (the dashboard's build is, in apps/server/dist/dashboard).
RUN npm prune --omit=dev --no-audit --no-fund \
  && sqlite=node_modules/better-sqlite3 \
  && mv $sqlite/build/Release/better_sqlite3.node /tmp/ \
  && rm -rf $sqlite/build $sqlite/deps $sqlite/src \
  && mkdir -p $sqlite/build/Release \
  && mv /tmp/better_sqlite3.node $sqlite/build/Release/ \
  && node -e "require('better-sqlite3')(':memory:').close()" \
  && rm -f node_modules/@ratchet/example-webapp node_modules/@ratchet/example-serverless node_modules/@ratchet/dashboard \
  && for dir in packages/core packages/storage packages/contract packages/client packages/orpc packages/testing apps/server; do \
       mkdir -p /out/$dir && cp -r $dir/package.json $dir/dist /out/$dir/; \
     done \
  && cp -r packages/storage/migrations /out/packages/storage/ \
  && cp package.json /out/ \
  && mv node_modules /out/ \
  && rm -rf /root/.npm

# ---- runtime ----
FROM node:20-bookworm-slim
# The official image has the unprivileged user `node` (uid 1000); create it if a base lacks it.
RUN id -u node >/dev/null 2>&1 || (groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node)
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8787 \
    DATABASE_URL=file:/data/ratchet.db
WORKDIR /app

# Compiled code and dependencies stay owned by root (read-only for the server); only /data is
# writable. `ratchet` on the PATH, e.g. `docker run --rm -v ratchet-data:/data IMAGE ratchet migrate`.
COPY --from=build /out/ ./
RUN ln -s /app/apps/server/dist/cli.js /usr/local/bin/ratchet

# The SQLite database (and its -wal/-shm files). Created and chowned before VOLUME so a new
# named volume starts owned by `node`.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 8787

# Liveness only (/healthz); /readyz says whether the executor is running.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8787) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# `ratchet start` configured by the environment, compiled JavaScript, no tsx. node itself is
# PID 1 (not npm or npx, which run node as a child and do not pass SIGTERM on), so SIGTERM
# reaches the server, which drains for up to RATCHET_DRAIN_MS (default 30000) and exits 0.
# Give the orchestrator a stop grace period longer than RATCHET_DRAIN_MS.
CMD ["node", "apps/server/dist/cli.js", "start"]
