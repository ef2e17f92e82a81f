# ceph-stats-exporter: container image.
#
# Build (compiles a static release binary in the Rust image, ships it on a distroless base that
# has CA certificates and no shell; runs as uid/gid 65532):
#   docker build -t ceph-stats-exporter .
#   docker build --build-arg RUST_IMAGE=rust:1.89-bookworm \
#                --build-arg RUNTIME_IMAGE=debian:bookworm-slim -t ceph-stats-exporter .
# (The binary carries its own TLS roots (webpki-roots) and time zones, so any base that can run a
# static x86_64/arm64 Linux binary works; distroless also brings /etc/ssl/certs for ca_file users.)
#
# Run the daemon: config mounted read-only, keys from the environment (the config says
# `access_key = { env = "EXPORTER_ACCESS_KEY" }`), state (spool of objects not yet uploaded,
# usage checkpoint) on a named volume, which must outlive the container:
#   docker run -d --name ceph-stats-exporter --restart unless-stopped --stop-timeout 40 \
#     -e EXPORTER_ACCESS_KEY -e EXPORTER_SECRET_KEY \
#     -v /etc/ceph-stats-exporter/config.toml:/etc/ceph-stats-exporter/config.toml:ro \
#     -v ceph-stats-exporter:/var/lib/ceph-stats-exporter \
#     -p 127.0.0.1:9184:9184 ceph-stats-exporter
# One run now, printed instead of uploaded:
#   docker run --rm -e EXPORTER_ACCESS_KEY -e EXPORTER_SECRET_KEY -v "$PWD/config.toml:/config.toml:ro" \
#     ceph-stats-exporter --once --dry-run --config /config.toml
#
# Notes:
# - Secrets from files instead: mount them (-v /srv/secrets:/run/secrets:ro, or Docker/Kubernetes
#   secrets), readable by uid 65532, and write `secret_key = { file = "/run/secrets/secret_key" }`.
# - The state directory is /var/lib/ceph-stats-exporter, owned by 65532 in the image, so a new
#   named volume starts out writable. A bind-mounted host directory must be owned by 65532
#   (chown 65532:65532 DIR) or the container run with --user matching its owner.
# - Health and metrics: with `[http]` `listen = "0.0.0.0:9184"` in the config, GET /healthz and
#   GET /metrics answer on port 9184 (0.0.0.0 so that a published port reaches it; with
#   --network host, 127.0.0.1 is enough). There is no HEALTHCHECK: the image has no shell or
#   curl; point the orchestrator's HTTP probe at /healthz.
# - On SIGTERM the exporter lets runs in flight finish for `exporter.shutdown_timeout` (30 s):
#   give `docker stop` more than that (--stop-timeout 40 above, or docker stop -t 40).
# - pool_df's default source runs the `ceph` CLI, which this image does not have: use
#   `[jobs.pool_df.source] type = "restful"` (mount its ca_file) or `type = "http"`, or set
#   `enabled = false` for that job.
# - Building needs BuildKit (Docker 23+ by default) or podman/buildah for the cache mounts, and a
#   Rust image recent enough for Cargo.lock's dependencies (rust:1-bookworm is the latest 1.x).
# - The `runtime-prebuilt` target packages a binary built outside (CI does this, see
#   dev/container-test.sh): build it static (RUSTFLAGS='-C target-feature=+crt-static' cargo
#   build --release --target x86_64-unknown-linux-gnu), put it alone in a directory named as the
#   context, and build with `--target runtime-prebuilt`.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# The state directory, created owned by the runtime user so that a new volume inherits it
# (distroless has no shell to create it in the runtime stage).
FROM ${RUST_IMAGE} AS skeleton
RUN install -d -o 65532 -g 65532 -m 0750 /skel/var/lib/ceph-stats-exporter

FROM ${RUST_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# Everything .dockerignore lets through: cargo wants every target Cargo.toml declares (tests,
# benches) to exist, even to build only the binary.
COPY . .
# Static glibc binary (runs on distroless/static or scratch); the target is named so that
# RUSTFLAGS reach only the binary, not build scripts and proc macros.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    triple="$(rustc -vV | sed -n 's/^host: //p')" \
 && RUSTFLAGS='-C target-feature=+crt-static' \
      cargo build --release --locked --target "$triple" --bin ceph-stats-exporter \
 && install -D -m 0755 "target/$triple/release/ceph-stats-exporter" /out/ceph-stats-exporter

FROM ${RUNTIME_IMAGE} AS runtime-base
LABEL org.opencontainers.image.title="ceph-stats-exporter" \
      org.opencontainers.image.description="Periodic snapshots of Ceph capacity and RGW usage, archived as objects in S3" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=skeleton --chown=65532:65532 /skel/var/lib/ /var/lib/
# Numeric, so that runAsNonRoot can check it and it works on a base without /etc/passwd.
USER 65532:65532
VOLUME ["/var/lib/ceph-stats-exporter"]
EXPOSE 9184
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ceph-stats-exporter"]

# A binary built outside the image (the build context holds it alone).
FROM runtime-base AS runtime-prebuilt
ARG PREBUILT_BINARY=ceph-stats-exporter
COPY ${PREBUILT_BINARY} /usr/local/bin/ceph-stats-exporter

# The default target: the binary built above.
FROM runtime-base AS runtime
COPY --from=builder /out/ceph-stats-exporter /usr/local/bin/ceph-stats-exporter
