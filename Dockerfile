# syntax=docker/dockerfile:1
# The nachos-sentinel sidecar image. Build: docker build -t nachos-sentinel .

# --- build: compile TypeScript with the dev dependencies --------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
# `npm ci` runs the `prepare` script, which compiles to dist/.
RUN npm ci --no-audit --no-fund

# --- runtime: production dependencies and the compiled code only ------------
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    POLICY_PATH=/app/policies \
    SENTINEL_STATE_DIR=/var/lib/nachos-sentinel
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# Example policies (YAML in Nachos' schema: strict, standard, permissive); mount your
# own over them (read-only is enough).
COPY policies ./policies
# `nachos-sentinel` on the PATH, for healthchecks and people.
RUN chmod +x dist/cli/bin.cjs && ln -s /app/dist/cli/bin.cjs /usr/local/bin/nachos-sentinel
# Where a sidecar delivers policies (a volume shared with its neighbour), and where the central
# sentinel keeps its policy history (a volume of its own, so that a rollback outlives the container):
# the image's user may write both.
RUN mkdir -p /app/delivered /var/lib/nachos-sentinel && chown node:node /app/delivered /var/lib/nachos-sentinel && chmod 700 /var/lib/nachos-sentinel
# The image's own unprivileged user.
USER node
VOLUME ["/app/policies", "/var/lib/nachos-sentinel"]
# The daemon's own readiness over its loopback HTTP listener (127.0.0.1:9470):
# connected to the bus and holding a valid policy snapshot. Needs no bus itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "/app/dist/cli/bin.cjs", "--once", "--self"]
ENTRYPOINT ["node", "/app/dist/cli/bin.cjs"]
CMD ["run"]
