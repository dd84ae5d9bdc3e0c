# The collector as a container image: one binary with the dashboard, the browser SDK and the
# migrations inside, SQLite on the /data volume by default, PostgreSQL by URL.
#
#   docker build -t pulseline-collector .          (or: podman build --format docker ...)
#   docker run -p 8080:8080 -v pulseline-data:/data pulseline-collector
#
# The first start prints the project's keys and the first admin's login once (docker logs).
# Target `prebuilt` packs a release binary built outside instead of compiling here (the test
# command and scripts/dist.sh use it): put the binary alone in a directory and build that
# directory with `-f Dockerfile --target prebuilt`. docs/deploy.md has the rest.
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
# collector/build.rs fetches the dashboard's chart library (uPlot) with npm.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pulseline-collector \
    && cp target/release/pulseline-collector /usr/local/bin/pulseline-collector

FROM ${RUNTIME_IMAGE} AS base
# curl for the HEALTHCHECK; ca-certificates for HTTPS alert deliveries (Discord, Slack, ...).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin pulseline \
    && mkdir -p /data \
    && chown pulseline:pulseline /data
ENV PULSELINE_LISTEN=0.0.0.0:8080 \
    PULSELINE_DATABASE_URL=sqlite:///data/pulseline.db \
    PULSELINE_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
USER pulseline:pulseline
EXPOSE 8080
# Ready means the database answers; an unready replica is taken out of rotation, not killed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/readyz"]
# SIGTERM lets in-flight requests and commits finish (PULSELINE_SHUTDOWN_GRACE_SECS, 30 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/pulseline-collector"]
CMD ["serve"]

FROM base AS prebuilt
COPY --chmod=0755 pulseline-collector /usr/local/bin/pulseline-collector

FROM base AS collector
COPY --from=build /usr/local/bin/pulseline-collector /usr/local/bin/pulseline-collector
