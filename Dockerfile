# syntax=docker/dockerfile:1
# recflow in a container: the image runs any recflow command (`docker run IMAGE etl ...`); the
# default command prints the help. `docker compose up` runs `recflow serve` beside an MLflow server.

# Build stage: Rust with the OpenBLAS and OpenSSL headers recflow links against.
FROM rust:1-bookworm AS build
# Debian stable's versions rotate with security updates, so packages are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libopenblas-dev pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin recflow \
    && install -m 0755 target/release/recflow /usr/local/bin/recflow

# Runtime stage: slim Debian with the OpenBLAS runtime (pthread build) and OpenSSL.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libopenblas0-pthread libssl3 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
ARG RECFLOW_UID=1000
RUN useradd --create-home --uid "${RECFLOW_UID}" --shell /usr/sbin/nologin recflow \
    && mkdir -p /app/data/raw /app/data/processed /app/artifacts /app/mlruns \
    && chown -R recflow:recflow /app
COPY --from=build /usr/local/bin/recflow /usr/local/bin/recflow
COPY --chown=recflow:recflow experiments /app/experiments
WORKDIR /app
USER ${RECFLOW_UID}
# Scoring runs on recflow's own threads; BLAS must not start more of them.
ENV OPENBLAS_NUM_THREADS=1 \
    PORT=8000
EXPOSE 8000
# Meaningful for `serve`; other commands finish long before the first check matters.
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD ["sh", "-c", "curl -fsS http://127.0.0.1:${PORT}/health || exit 1"]
ENTRYPOINT ["recflow"]
CMD ["--help"]
