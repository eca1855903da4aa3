# Holotrack server image. The MediaPipe models ship inside the mediapipe 0.10.21 wheel, so
# the image holds them and a container downloads nothing when it starts (the last build
# step runs every graph with network access refused). deploy/README.md tells how to build
# it with Docker, or with buildah where no Docker engine runs (`make image`).
# No `# syntax=` line: it makes BuildKit fetch a parser from a registry, and Docker's
# built-in one already knows everything this file uses.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv with the pinned dependencies -----------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies before code, so a code edit reuses this layer. The file pins every package
# and pip itself (deploy/image/pin.py writes it from the project's .venv); --no-deps keeps
# out what mediapipe declares but the server never imports (jax, jaxlib, scipy...), and the
# headless OpenCV stands in for opencv-contrib-python, which needs libGL.
COPY deploy/image/requirements.txt ./
RUN python3 -m venv /opt/holotrack \
 && /opt/holotrack/bin/pip install --no-deps "$(grep '^pip==' requirements.txt)" \
 && /opt/holotrack/bin/pip install --no-deps -r requirements.txt
# The pins must satisfy what pyproject.toml declares: a dependency added there but not
# pinned fails the build here, not the container at run time.
COPY pyproject.toml ./
RUN /opt/holotrack/bin/python -c "import tomllib, importlib.metadata as md; \
from packaging.requirements import Requirement; \
deps = map(Requirement, tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']); \
bad = [str(d) for d in deps if not d.specifier.contains(md.version(d.name), prereleases=True)]; \
assert not bad, f'deploy/image/requirements.txt does not satisfy {bad}'"

# -- vendor: the avatar page's npm modules (three.js, three-vrm, qrcode-generator) --------------
# Depends only on package.json and package-lock.json, so a code edit reuses it. Debian's npm,
# since the base has no Node; this stage is thrown away, only the files below reach the image.
FROM ${PYTHON_IMAGE} AS vendor
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Exactly the files webapp/avatar_page.py serves (VENDOR_FILES; tests/test_image.py checks the
# image holds those and no other script), with each package's licence and package.json
# (qrcode-generator's licence is the head of its one file).
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && cp --parents -t /opt \
        node_modules/three/LICENSE \
        node_modules/three/package.json \
        node_modules/three/build/three.module.js \
        node_modules/three/build/three.core.js \
        node_modules/three/examples/jsm/loaders/GLTFLoader.js \
        node_modules/three/examples/jsm/utils/BufferGeometryUtils.js \
        node_modules/three/examples/jsm/utils/SkeletonUtils.js \
        node_modules/@pixiv/three-vrm/LICENSE \
        node_modules/@pixiv/three-vrm/package.json \
        node_modules/@pixiv/three-vrm/lib/three-vrm.module.js \
        node_modules/qrcode-generator/package.json \
        node_modules/qrcode-generator/dist/qrcode.mjs

# -- runtime: the virtualenv, the code, an unprivileged user --------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 holotrack \
 && useradd --system --uid 10001 --gid holotrack --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin holotrack \
 && install -d -o holotrack -g holotrack /var/cache/holotrack/matplotlib
COPY --from=build /opt/holotrack /opt/holotrack
ENV PATH=/opt/holotrack/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/var/cache/holotrack/matplotlib \
    HOLOTRACK_HOST=0.0.0.0 \
    HOLOTRACK_PORT=8080 \
    HOLOTRACK_LOG_FORMAT=json
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# mediapipe imports matplotlib, which builds its font cache on first import: do it now, once.
RUN python -c "import matplotlib.font_manager"
WORKDIR /app
# Before the code, so a code edit reuses them: /avatar's modules and its default avatar, where
# webapp/avatar_page.py looks for them (/app/node_modules, /app/media).
COPY --from=vendor /opt/node_modules/ node_modules/
COPY media/godette_avatar.vrm media/
COPY webapp/ webapp/
COPY static/ static/
COPY templates/ templates/
# Every graph the server uses loads and runs a blank frame while any connection or name
# lookup from Python ends the build (mediapipe fetches models with urllib). Docker's
# `RUN --network=none` would say the same, but buildah 1.28 refuses it; tests/test_image.py
# also starts the server with no network at all.
RUN python -c "import sys; \
sys.addaudithook(lambda event, args: event in ('socket.connect', 'socket.getaddrinfo', \
'socket.gethostbyname', 'socket.sendto', 'urllib.Request') \
and sys.exit(f'network access while loading the graphs: {event} {args}')); \
from webapp.engine.inference import StillEngine, TrackEngine, warm; \
from webapp.protocol import Track; \
[warm(e) for e in (StillEngine(), TrackEngine(Track.HOLISTIC), TrackEngine(Track.POSE))]"
EXPOSE 8080
# Liveness only: the process answers. Readiness (room for one more session) is /readyz,
# for the balancer or the orchestrator; an unhealthy container is not a full one.
# buildah and podman keep HEALTHCHECK only in Docker-format images (--format docker).
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-m", "webapp.healthcheck"]
# SIGTERM closes every session with 1001 and a reason, then the server exits within seconds.
STOPSIGNAL SIGTERM
# No flags: every setting is a HOLOTRACK_* variable an operator can change (a flag here
# outranked HOLOTRACK_HOST, so a replica meant for its sidecar alone listened everywhere).
CMD ["python", "-m", "webapp"]
