# mirim-reduce: the JWST MIRI imaging reduction appliance as a container image.
#
# Build through make (containers/Makefile.inc), which first makes the wheelhouse on the host:
#   make image-demo   -> mirim-reduce:demo    synthetic CRDS context, built here from the locked code
#   make image        -> mirim-reduce:latest  CRDS_CONTEXT=jwst_NNNN.pmap, cache synced on the host
# Works with the legacy builder and with BuildKit (here the docker 28 client has no buildx, so
# DOCKER_BUILDKIT must stay unset). Nothing here reaches the Python package index: every Python
# package comes from wheels/ (pip --no-index --require-hashes against requirements.lock).
# Only apt reaches the Debian mirror, for python3 and tini.

# Pin by digest where a registry is reachable, e.g.
#   --build-arg BASE_IMAGE=debian:bookworm-slim@sha256:<digest>
# Here the default tag is a locally imported debootstrap image (containers/make-base-image.sh).
ARG BASE_IMAGE=debian:bookworm-slim
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime-base
# Every stage inherits this label: the build prunes the untagged images it leaves behind
# (containers/Makefile.inc, DOCKER_PRUNE) and nothing else on the engine.
LABEL io.github.mirim-reduce.part-of="mirim-reduce"
# python3 is Debian's 3.11.2 in bookworm: the wheelhouse is resolved for exactly that (IMAGE_PYTHON).
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3 tini; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log

# ---------------------------------------------------------------------------------------------
FROM runtime-base AS builder
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3-venv; \
    rm -rf /var/lib/apt/lists/*
ARG SOURCE_DATE_EPOCH=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements.lock /tmp/build/requirements.lock
# The wheels are layers of this stage only; the final image copies /opt/mirim-reduce alone.
# Locked dependencies first: a change to the project's code does not reinstall them.
COPY wheels/*.whl /wheels/
RUN set -eux; \
    python3 -m venv /opt/mirim-reduce; \
    /opt/mirim-reduce/bin/pip install --no-index --find-links /wheels --no-compile \
        --require-hashes --no-deps -r /tmp/build/requirements.lock; \
    # bytecode for a read-only file system, independent of file times (reproducible)
    /opt/mirim-reduce/bin/python -m compileall -q -j0 --invalidation-mode unchecked-hash /opt/mirim-reduce/lib
COPY wheels/project/*.whl /wheels/project/
RUN set -eux; \
    /opt/mirim-reduce/bin/pip install --no-index --no-compile --no-deps /wheels/project/mirim_reduce-*.whl; \
    /opt/mirim-reduce/bin/pip uninstall -y -q pip setuptools; \
    rm -f /opt/mirim-reduce/bin/pip* /opt/mirim-reduce/bin/activate*; \
    /opt/mirim-reduce/bin/python -m compileall -q --invalidation-mode unchecked-hash \
        /opt/mirim-reduce/lib/python3.11/site-packages/reduce; \
    /opt/mirim-reduce/bin/python -c 'import jwst, crds, photutils, reduce'; \
    /opt/mirim-reduce/bin/python -m pip --version 2>/dev/null && exit 1 || true; \
    find /opt/mirim-reduce/lib -name '*.dist-info' -prune -printf '%f\n' | sort >/opt/mirim-reduce/MANIFEST

# ---------------------------------------------------------------------------------------------
# The CRDS cache. CRDS_SOURCE=demo: the synthetic context, built here by the locked code itself
# (reproducible, no host state); CRDS_SOURCE=dir: a cache synced on the host (make crds-cache),
# copied from CRDS_CACHE_DIR. COPY needs a folder either way: make passes an empty one for demo.
FROM builder AS crds
ARG CRDS_SOURCE=demo
ARG CRDS_CONTEXT=jwst_9000.pmap
ARG CRDS_CACHE_DIR=build/crds-none
COPY ${CRDS_CACHE_DIR}/ /tmp/crds-host/
RUN set -eux; \
    case "$CRDS_SOURCE" in \
      demo) /opt/mirim-reduce/bin/mirim-reduce crds build-demo-context /opt/crds ;; \
      dir)  mv /tmp/crds-host /opt/crds ;; \
      *)    echo "CRDS_SOURCE must be demo or dir" >&2; exit 2 ;; \
    esac; \
    rm -rf /tmp/crds-host; \
    test -f "/opt/crds/mappings/jwst/$CRDS_CONTEXT"; \
    chmod -R a+rX,go-w /opt/crds

# ---------------------------------------------------------------------------------------------
FROM runtime-base
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=unknown
ARG JWST_VERSION=unknown
ARG CRDS_CONTEXT
ARG BASE_IMAGE
ARG SOURCE_DATE_EPOCH=0
ARG IMAGE_REF=mirim-reduce
RUN set -eux; \
    groupadd --gid 1000 mirim; \
    useradd --uid 1000 --gid 1000 --home-dir /home/mirim --create-home --shell /bin/sh mirim; \
    mkdir -p /data; chmod 1777 /data
COPY --from=builder /opt/mirim-reduce /opt/mirim-reduce
COPY --from=crds /opt/crds /opt/crds
COPY entrypoint /usr/local/bin/mirim-reduce-entrypoint
ENV PATH=/opt/mirim-reduce/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CRDS_PATH=/opt/crds \
    CRDS_CONTEXT=${CRDS_CONTEXT} \
    CRDS_SERVER_URL=https://jwst-serverless-mode.stsci.edu \
    CRDS_READONLY_CACHE=1 \
    MPLBACKEND=Agg \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
# Build labels as environment: every run's manifest.json records MIRIM_IMAGE_REF and the
# MIRIM_BUILD_* variables (reduce/products/manifest.py image_info). The image digest cannot be
# known inside its own build: pass it at run time to have it recorded too, e.g.
#   docker run -e MIRIM_IMAGE_DIGEST=$(docker image inspect -f '{{.Id}}' mirim-reduce:demo) ...
# (a registry digest, {{index .RepoDigests 0}}, once pushed). Kept last: a new revision only
# changes these metadata layers.
ENV MIRIM_IMAGE_REF=${IMAGE_REF} \
    MIRIM_BUILD_VERSION=${VERSION} \
    MIRIM_BUILD_REVISION=${REVISION} \
    MIRIM_BUILD_SOURCE=${SOURCE} \
    MIRIM_BUILD_JWST=${JWST_VERSION} \
    MIRIM_BUILD_CRDS_CONTEXT=${CRDS_CONTEXT} \
    MIRIM_BUILD_BASE_IMAGE=${BASE_IMAGE} \
    MIRIM_BUILD_SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH}
LABEL org.opencontainers.image.title="mirim-reduce" \
      org.opencontainers.image.description="Reproducible reduction of JWST MIRI imaging with the jwst pipeline" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.opencontainers.image.ref.name="${IMAGE_REF}" \
      io.github.mirim-reduce.jwst.version="${JWST_VERSION}" \
      io.github.mirim-reduce.crds.context="${CRDS_CONTEXT}"
VOLUME /data
WORKDIR /data
USER 1000:1000
# tini as PID 1: reaps, and (-g) forwards SIGINT/SIGTERM to the whole process group (--jobs workers).
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/mirim-reduce-entrypoint"]
CMD ["--help"]
