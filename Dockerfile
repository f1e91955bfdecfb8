# syntax=docker/dockerfile:1
# The cosi-driver image: `cosi-driver serve` as an unprivileged user, nothing else.
#
#   docker build -t cosi-driver:0.1.0 .
#
# The pod gives the driver two writable places and keeps the root file system read-only:
# /var/lib/cosi (an emptyDir shared with the provisioner sidecar, holding cosi.sock) and
# /var/lib/cosi-driver (state and, for the filesystem backend, its data).
# tests/test_deploy_image.py lints this file with hadolint and runs the same install steps in a
# fresh virtual environment, because this machine has no container engine.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the driver and its dependencies into a self-contained virtual environment --------
FROM ${PYTHON_IMAGE} AS build
# Optional extras baked into the image: the S3/IAM SDK, the Azure Blob SDK and the Kubernetes state store.
ARG EXTRAS=s3,azure,kubernetes,otel
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cosi_driver/ cosi_driver/
# Every dependency ships a manylinux wheel, so no compiler is needed even here. pip goes once the
# venv is filled: the image installs nothing at run time.
RUN python -m venv /opt/cosi-driver \
 && /opt/cosi-driver/bin/pip install --no-cache-dir ".[${EXTRAS}]" \
 && /opt/cosi-driver/bin/pip uninstall --yes pip \
 && /opt/cosi-driver/bin/cosi-driver --version

# ---- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://example.invalid/cosi-driver
LABEL org.opencontainers.image.title="cosi-driver" \
      org.opencontainers.image.description="Kubernetes COSI driver (cosi.v1alpha1) with pluggable storage backends; runs next to the objectstorage-sidecar" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# The base image's own pip and setuptools are build tools; the driver's venv does not use them.
# UID/GID 10001 is the driver; the sidecar (UID 65532 upstream) reaches the socket through the
# pod's fsGroup, never through world permissions.
RUN python -m pip uninstall --yes pip setuptools wheel \
 && groupadd --system --gid 10001 cosi \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cosi \
 && install -d -o 10001 -g 10001 -m 0770 /var/lib/cosi \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/cosi-driver

COPY --from=build /opt/cosi-driver /opt/cosi-driver

ENV PATH=/opt/cosi-driver/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    COSI_ENDPOINT=unix:///var/lib/cosi/cosi.sock \
    COSI_DRIVER_STATE_DIR=/var/lib/cosi-driver/state \
    COSI_DRIVER_LOG_FORMAT=json

USER 10001:10001
WORKDIR /var/lib/cosi-driver
# Probes and /metrics, when COSI_DRIVER_HTTP_ADDR=0.0.0.0:8080 is set.
EXPOSE 8080
ENTRYPOINT ["cosi-driver", "serve"]
