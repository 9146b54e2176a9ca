# syntax=docker/dockerfile:1
#
# Ratchet server image. Runs the TypeScript sources with tsx (no bundle), on SQLite in /data.
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
# The module must export its tasks as one object (`export const tasks = { ... }`) and may only
# import packages present in this image (zod, @ratchet/core, node built-ins, ...). For other
# dependencies build FROM this image and install them (see docs/deployment.md). Without
# RATCHET_TASKS the server runs the example tasks of apps/server/src/example-tasks.ts.

# ---- build: install dependencies (better-sqlite3 is compiled here by node-gyp) ----
FROM node:20-bookworm-slim AS build
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
# A workspace of the repository (npm ci needs every workspace's manifest); not in the image.
COPY examples/webapp/package.json examples/webapp/

# tsx is a devDependency but runs the server. `npm ci` installs the whole lockfile (exact
# versions and integrity, tsx included); then, in this stage only, tsx is declared a
# production dependency and `npm prune --omit=dev` removes every other dev package
# (eslint, vitest, typescript, drizzle-kit, ...). Prune only deletes, so nothing is resolved
# outside the lockfile. The repository's package.json is copied unchanged into the runtime
# stage. Last, better-sqlite3 keeps only its compiled addon (its C sources and object files
# are ~26 MB), and the native module and tsx are checked. node_modules: ~200 MB -> ~50 MB.
RUN npm ci --no-audit --no-fund \
  && npm pkg set "dependencies.tsx=$(node -p 'require("./package.json").devDependencies.tsx')" \
  && npm pkg delete devDependencies.tsx \
  && npm prune --omit=dev --no-audit --no-fund \
  && sqlite=node_modules/better-sqlite3 \
  && mv $sqlite/build/Release/better_sqlite3.node /tmp/ \
  && rm -rf $sqlite/build $sqlite/deps $sqlite/src \
  && mkdir -p $sqlite/build/Release \
  && mv /tmp/better_sqlite3.node $sqlite/build/Release/ \
  && node -e "require('better-sqlite3')(':memory:').close()" \
  && node --import tsx -e "" \
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

# Dependencies and sources stay owned by root (read-only for the server); only /data is writable.
COPY --from=build /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
# packages/storage/migrations/sqlite is applied at start-up, found relative to the sources.
COPY packages ./packages
COPY apps ./apps

# The SQLite database (and its -wal/-shm files). Created and chowned before VOLUME so a new
# named volume starts owned by `node`.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 8787

# Liveness only (/healthz); /readyz says whether the executor is running.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8787) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node itself is PID 1 (not npm, not the tsx CLI, which both run node as a child process), so
# SIGTERM reaches the server, which drains for up to RATCHET_DRAIN_MS (default 30000) and
# exits 0. Give the orchestrator a stop grace period longer than RATCHET_DRAIN_MS.
CMD ["node", "--import", "tsx", "apps/server/src/main.ts"]
