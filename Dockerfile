# syntax=docker/dockerfile:1
# Thingstead container image: `docker build -t thingstead .` from the repository root.
# One broker process per container by default (`up`); scale with more containers, or pass
# `up --workers N` to run N broker processes sharing the ports (cluster mode: needs
# THINGSTEAD_DATABASE_URL and THINGSTEAD_NATS_URL). See docs/cluster.md.

# ---- build: all dependencies, compile TypeScript and the console, then drop the dev dependencies ----
FROM node:20-bookworm-slim AS build
# Toolchain for native modules (better-sqlite3, serialport) when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole tree before `npm ci`: its `prepare` script runs the build, which needs the sources.
COPY . .
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: production dependencies and dist/ only, as an unprivileged user ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    THINGSTEAD_DATA_DIR=/var/lib/thingstead \
    THINGSTEAD_HTTP_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Copies a cluster's shared secrets (CA, server certificate, master key, URL key) into a node's data directory; run by
# the compose `seed` service and the Kubernetes init container (deploy/seed-data-dir.sh).
COPY deploy/seed-data-dir.sh /usr/local/bin/thingstead-seed
RUN chmod 0755 /usr/local/bin/thingstead-seed \
 && mkdir -p /var/lib/thingstead \
 && chown 1000:1000 /var/lib/thingstead \
 && chmod 0700 /var/lib/thingstead
# uid 1000 is the image's `node` user; numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000
VOLUME ["/var/lib/thingstead"]
# 8080: HTTP API, console, /healthz, /metrics. 8883: MQTT over mutual TLS.
# Off by default, exposed when set: THINGSTEAD_MQTT_PORT, _MQTT_WSS_PORT, _MQTT_ALPN_PORT, _DEVICE_HTTPS_PORT.
EXPOSE 8080 8883
# No curl in the slim image: node asks /healthz (200 ok, 503 degraded) on the HTTP port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.THINGSTEAD_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["up"]
