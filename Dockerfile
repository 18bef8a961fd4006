# syntax=docker/dockerfile:1
#
# The cosmogate container image: a release build of the `cosmogate` binary on a distroless
# base, run as an unprivileged user with a read-only root filesystem in mind.
#
#   docker build -t cosmogate:0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# The configuration is not part of the image: mount a directory holding cosmogate.toml (and
# the files it names) at /etc/cosmogate. docs/deployment.md explains each choice, and says
# what tests/tests/deploy.rs checks about this file (its build is not run by CI here).

# The builder runs the same toolchain as CI (`rustc --version`) on the same Debian release as
# the runtime base, so the binary needs no newer glibc than the base provides.
FROM docker.io/library/rust:1.95.0-slim-bookworm AS builder
WORKDIR /src

# Only what the workspace needs to load and build: its manifest and lockfile, the crates, and
# the manifest and library of the `tests` member (a workspace member must be present for
# cargo to read the workspace). .dockerignore keeps everything else out of the context.
COPY Cargo.toml Cargo.lock ./
COPY crates/ crates/
COPY tests/Cargo.toml tests/
COPY tests/src/ tests/src/

# Downloaded crates and compiled dependencies live in BuildKit cache mounts, so a change to
# cosmogate's own sources recompiles only the workspace crates. The binary leaves the cache
# mount split in two: the runtime copy without its line tables (about a fifth of the size;
# backtraces still name functions), and the line tables on their own for the `debuginfo`
# stage below.
RUN --mount=type=cache,id=cosmogate-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=cosmogate-target,target=/src/target,sharing=locked \
    cargo build --locked --release -p cosmogate-server --bin cosmogate \
    && mkdir -p /out \
    && objcopy --only-keep-debug target/release/cosmogate /out/cosmogate.debug \
    && objcopy --strip-debug --add-gnu-debuglink=/out/cosmogate.debug \
        target/release/cosmogate /out/cosmogate

# `docker build --target debuginfo --output type=local,dest=out .` exports the line tables,
# for symbolising a backtrace from a production pod.
FROM scratch AS debuginfo
COPY --from=builder /out/cosmogate.debug /cosmogate.debug

# distroless/cc holds glibc, libgcc_s, the CA certificates and a nonroot user, and no shell:
# exactly what the binary links (see `ldd`), and nothing an attacker could use.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="cosmogate" \
      org.opencontainers.image.description="Identity-aware gateway for Azure Cosmos DB: validates OIDC access tokens, applies a least-privilege policy, forwards with its own Entra ID credential and writes an audit record" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /out/cosmogate /usr/local/bin/cosmogate

# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532

# The data listener (HTTPS) and the admin listener (/healthz, /readyz, /metrics), as in
# deploy/kubernetes/cosmogate.toml.
EXPOSE 8443/tcp 9464/tcp

# cosmogate drains its connections on SIGTERM (Docker's default stop signal), then writes the
# last audit records before it exits.
ENTRYPOINT ["/usr/local/bin/cosmogate", "serve", "--config", "/etc/cosmogate/cosmogate.toml"]
