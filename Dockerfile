# The one app image for every process role: the compose service (or Procfile line) picks the role
# with its command: `node dist/src/main.js api | persist-worker | lifecycle-worker | webhook-worker | migrate`.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the native add-ons in the tree (msgpackr-extract, @parcel/watcher) ship
# prebuilt platform packages, and the slim image has no compiler to build them from source.
RUN npm install --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json knexfile.ts ./
COPY migrations ./migrations
COPY src ./src
COPY scripts/build-web.mjs ./scripts/
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-slim
ENV NODE_ENV=production
# a larger young generation for every role: see docs/BENCHMARKS.md ("garbage collection")
ENV NODE_OPTIONS=--max-semi-space-size=64
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
# 8002: the API (PORT); 9464: a worker's /metrics and /health (METRICS_PORT)
EXPOSE 8002 9464
CMD ["node", "dist/src/main.js", "api"]
