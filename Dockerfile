# syntax=docker/dockerfile:1
#
# Federator's container image: the operator (`federator run`) as a non-root user.
#
#   docker build -t federator:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# or `make image` (podman from Debian packages, on a base made from Debian packages: see
# docs/image.md and federator/devcluster/image.py).
#
# Two stages on the same base image (the virtualenv's interpreter is the base image's):
# - builder: installs the locked dependencies (requirements/image.lock: every version pinned,
#   every file's hash checked, wheels only) into a virtualenv, builds the project into a wheel
#   from its own metadata with the locked build backend (requirements/image-build.lock; crds/,
#   templates/, examples/, the vendored delegate CRDs and the control-plane recipe go inside
#   it, see pyproject's hatch force-include) and installs that wheel into the same virtualenv;
# - final: the base image plus that virtualenv only. No pip, no build tools, no compilers, no
#   sources; bytecode compiled at install time, so a read-only root filesystem is fine.
#
# The package index is reached with build secrets, never stored in a layer:
#   --secret id=pip-ca,src=FILE     a CA bundle for the index (a TLS-intercepting proxy's)
#   --secret id=pip-conf,src=FILE   a pip.conf (index-url with credentials, ...)
# Both are optional: without them pip uses PyPI and the base image's CA bundle.

# The base of both stages: any Debian-like image with Python >= 3.11, python -m venv and pip.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# Points pip at the build secrets that were given (they exist only during a RUN that mounts
# them); sourced by each RUN that downloads.
COPY hack/image/pip-secrets.sh /usr/local/lib/pip-secrets.sh

# The runtime virtualenv without pip (the builder's own pip installs into it: pip --python), and
# a throwaway one with the locked build backend.
RUN python -m venv --without-pip /opt/federator \
    && python -m venv /opt/build

# tini, to run as PID 1 and hand signals to the operator: the kernel drops a signal PID 1 left
# at its default action, and the interpreter needs its first ~60 ms before its own handlers are
# in (docs/design-notes.md, "Signals as PID 1"). Debian's static build, copied alone into the
# final stage (no package manager runs there).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.* \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# The dependencies first, from the lock alone: a code change does not reinstall them.
COPY requirements/ requirements/
RUN --mount=type=secret,id=pip-ca --mount=type=secret,id=pip-conf \
    . /usr/local/lib/pip-secrets.sh \
    && pip --python /opt/federator/bin/python install \
        --require-hashes --only-binary=:all: --requirement requirements/image.lock \
    && /opt/build/bin/pip install \
        --require-hashes --only-binary=:all: --requirement requirements/image-build.lock

# Then the project, as a wheel built from its own metadata (offline: the build backend is
# installed), installed without dependencies (they are all there; pip check fails the build if
# pyproject.toml and the lock disagree).
COPY pyproject.toml README.md ./
COPY federator/ federator/
COPY crds/ crds/
COPY templates/ templates/
COPY examples/ examples/
COPY third_party/delegate-crds/ third_party/delegate-crds/
COPY hack/controlplane/ hack/controlplane/
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --no-index --wheel-dir /wheels . \
    && pip --python /opt/federator/bin/python install --no-deps --no-index /wheels/federator-*.whl \
    && pip --python /opt/federator/bin/python check \
    && /opt/federator/bin/federator crd > /dev/null


FROM ${BASE_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown

LABEL org.opencontainers.image.title="federator" \
      org.opencontainers.image.description="A Kubernetes meta-operator that compiles one streaming Application into the CRs of the operators you already run." \
      org.opencontainers.image.source="https://github.com/federator/federator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# The user the chart runs as (runAsNonRoot needs the numeric USER below).
RUN groupadd --system --gid 65532 federator \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin federator

COPY --from=builder /opt/federator /opt/federator
COPY --from=builder /usr/bin/tini-static /usr/bin/tini

ENV PATH=/opt/federator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Prometheus metrics (settings operator.metricsPort) and kopf's liveness endpoint
# (operator.livenessPort, path /healthz).
EXPOSE 8080 8081

USER 65532:65532
# tini is PID 1, federator its child; a SIGTERM that arrives before federator's handlers are in
# ends it with 143, which tini reports as 0 (a clean stop).
ENTRYPOINT ["/usr/bin/tini", "-e", "143", "--", "federator"]
CMD ["run"]
