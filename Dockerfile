# syntax=docker/dockerfile:1
# Switchboard's container image: built with the dev dependencies (TypeScript), run with the
# production ones only, as an unprivileged user.
#   docker build -t switchboard .
#   docker run --rm -p 8080:8080 -v "$PWD/switchboard.yaml:/etc/switchboard/switchboard.yaml:ro" switchboard
# The config is /etc/switchboard/switchboard.yaml (none is built in: mount yours); listeners bind
# 0.0.0.0 inside the container. It reloads when the file changes and on `docker kill -s HUP`.

FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the base image brings Node 24, so the `node` devDependency's download is not
# needed; TypeScript needs no install script.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/build-dashboard.ts ./scripts/
# The compiled code, then the dashboard's page (uPlot bundled by esbuild) into dist/dashboard/.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && node scripts/build-dashboard.ts

FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /opt/switchboard
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY examples ./examples
COPY LICENSE README.md ./
# The build fails here if the shipped example does not validate with the code just built.
RUN node bin/switchboard.js validate -c examples/demo.yaml \
 && node bin/switchboard.js validate -c examples/api-gateway.yaml \
 && mkdir -p /etc/switchboard \
 && ln -s /opt/switchboard/bin/switchboard.js /usr/local/bin/switchboard
# The node image's unprivileged user (uid 1000); it cannot write the code or the config.
USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
# GET /healthz on the admin listener (`admin: { address: "127.0.0.1:9901" }` in the config; the
# admin listener lands with issue 12's admin API): 200 while the process is alive. A config
# without `admin` makes the check fail: keep it or override HEALTHCHECK.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/switchboard/bin/switchboard.js"]
CMD ["start", "-c", "/etc/switchboard/switchboard.yaml"]
