# tollgate in a container: the proxy on 0.0.0.0:4100, the ledger on the volume /data.
#
#   docker build -t tollgate .
#   docker run -p 4100:4100 -v tollgate-data:/data -v ./tollgate.yaml:/config/tollgate.yaml:ro \
#     -e TOLLGATE_CONFIG=/config/tollgate.yaml -e OPENAI_API_KEY tollgate
#
# A bind on 0.0.0.0 is refused at start unless the config sets server.apiKeys (anyone who can reach
# the port would spend the provider keys): see docker-compose.example.yml.

FROM node:20-slim AS build
# better-sqlite3 downloads a prebuilt addon; where none fits (another architecture, no network to
# GitHub) it compiles one, which needs these. Only this stage has them.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, so that a change to the sources does not reinstall them. The root `prepare`
# script (the build) needs the sources, so install scripts are skipped here and the two packages
# that need theirs are rebuilt: better-sqlite3 (fetches its prebuilt addon) and esbuild.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3 esbuild
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev && npm cache clean --force

FROM node:20-slim
ENV NODE_ENV=production \
    TOLLGATE_DB=/data/tollgate.db
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN ln -s /app/dist/bin.js /usr/local/bin/tollgate \
    && mkdir -p /data && chown node:node /data
# The image's own unprivileged user (uid 1000); it owns only /data.
USER node
VOLUME ["/data"]
EXPOSE 4100
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.TOLLGATE_PORT || 4100}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["tollgate", "start", "--host", "0.0.0.0"]
