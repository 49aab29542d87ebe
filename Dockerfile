# Turnkey: one self-contained binary (bun build --compile) on a small Debian base.
# Build:  docker build -t turnkey .
# Run:    docker run -p 8080:8080 -v turnkey-data:/data turnkey
# Probes: GET /healthz (liveness) and GET /readyz (readiness); deploy/kubernetes/ has manifests.
# Supervisor mode: copy /usr/local/bin/turnkey and /usr/bin/tini-static (no library dependencies) from this image into the runner's
# image (docs/kubernetes.md). To give each turn's runner its own uid (TURNKEY_RUNNER_UIDS, README
# "Isolation"), run the gateway as root with only CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_DAC_OVERRIDE
# and CAP_KILL instead of USER below (deploy/kubernetes/supervisor-isolated.yaml; start-up names a
# missing one). The probe and teardown need /bin/sh and sleep, which this base has.

# --- build stage: Node + npm fetch Bun from the npm registry, Bun compiles the binary -------------
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json bunfig.toml ./
COPY src ./src
COPY examples ./examples
RUN npx bun build --compile --minify --sourcemap --outfile /out/turnkey src/main.ts \
 && /out/turnkey version

# --- runtime stage: non-root, tini as PID 1 so killed grandchildren are reaped ---------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --create-home turnkey
COPY --from=build /out/turnkey /usr/local/bin/turnkey
USER 10001:10001
WORKDIR /data
ENV TURNKEY_DATA_DIR=/data \
    TURNKEY_HOST=0.0.0.0 \
    TURNKEY_PORT=8080
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/turnkey"]
CMD ["serve"]
