# syntax=docker/dockerfile:1
#
# Federator's container image: the operator (`federator run`) as a non-root user.
#
#   docker build -t federator:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# Two stages on the same base image (the virtualenv's interpreter is the base image's):
# - builder: installs the dependencies named in pyproject.toml into a virtualenv, then builds the
#   project into a wheel from its own metadata (crds/, templates/, examples/, the vendored
#   delegate CRDs and the control-plane recipe go inside it, see pyproject's hatch
#   force-include) and installs that wheel into the same virtualenv;
# - final: the base image plus that virtualenv only. No pip, no build tools, no compilers, no
#   sources; bytecode compiled at install time, so a read-only root filesystem is fine.
# Dependencies are installed from wheels only (--only-binary): neither stage needs a compiler.

FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# A virtualenv without pip: the builder's own pip installs into it (pip --python).
RUN python -m venv --without-pip /opt/federator

WORKDIR /src

# The dependencies first, read from pyproject.toml alone: a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > requirements.txt \
    && pip --python /opt/federator/bin/python install --only-binary=:all: --requirement requirements.txt

# Then the project, as a wheel built from its own metadata, installed without dependencies
# (they are all there; pip check fails the build if pyproject.toml and the wheel disagree).
COPY README.md ./
COPY federator/ federator/
COPY crds/ crds/
COPY templates/ templates/
COPY examples/ examples/
COPY third_party/delegate-crds/ third_party/delegate-crds/
COPY hack/controlplane/ hack/controlplane/
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip --python /opt/federator/bin/python install --no-deps /wheels/federator-*.whl \
    && pip --python /opt/federator/bin/python check \
    && /opt/federator/bin/federator crd > /dev/null


FROM python:3.11-slim-bookworm

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

ENV PATH=/opt/federator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Prometheus metrics (settings operator.metricsPort) and kopf's liveness endpoint
# (operator.livenessPort, path /healthz).
EXPOSE 8080 8081

USER 65532:65532
ENTRYPOINT ["federator"]
CMD ["run"]
