# One image for the API and both workers; docker-compose.yml picks the command.
# syntax=docker/dockerfile:1

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS check
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run typecheck
# The web page (web/dist), bundled with everything it loads: no CDN at run time.
RUN npm run build:web

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production DATA_DIR=/data
# The HPC worker's allocator setting (worker/hpc-process-env.ts); read by glibc at process start.
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
RUN groupadd --system farm && useradd --system --gid farm --home /app farm && mkdir -p /data && chown farm:farm /data && chmod 700 /data
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY common ./common
COPY storage ./storage
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY api ./api
COPY web ./web
COPY --from=check /app/web/dist ./web/dist
COPY temporal-config ./temporal-config
# Fails the build if the type check stage did not pass.
COPY --from=check /app/package.json /tmp/checked
USER farm
EXPOSE 3000
# node itself as the process Docker signals (see docker-compose.yml: npm would not pass SIGTERM on).
CMD ["node", "--max-semi-space-size=16", "--import", "tsx", "api/main.ts"]
