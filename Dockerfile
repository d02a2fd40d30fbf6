# syntax=docker/dockerfile:1
# One image for every runmesh process: `runmesh up`, `runmesh serve <service>`, `runmesh migrate`.
#   docker build -t runmesh .

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
# make and g++ build librdkafka; pkg-config finds system libraries for the -sys crates.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p runmesh \
    && install -D -m 0755 target/release/runmesh /out/runmesh

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 runmesh \
    && useradd --system --uid 10001 --gid runmesh --home-dir /nonexistent --shell /usr/sbin/nologin runmesh \
    && install -d -o runmesh -g runmesh -m 0750 /data
COPY --from=build /out/runmesh /usr/local/bin/runmesh
USER 10001:10001
# Containers listen on every interface; the embedded mode keeps its SQLite files under /data.
ENV RUNMESH_GRPC_ADDR=0.0.0.0:50051 \
    RUNMESH_HTTP_ADDR=0.0.0.0:8080 \
    RUNMESH_METRICS_ADDR=0.0.0.0:9464 \
    RUNMESH_DATA_DIR=/data \
    RUNMESH_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 50051 8080 9464
ENTRYPOINT ["/usr/local/bin/runmesh"]
CMD ["up"]
