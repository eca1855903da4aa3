# syntax=docker/dockerfile:1
# Holotrack server image. The MediaPipe models ship inside the mediapipe 0.10.21 wheel, so
# the image holds them and a container downloads nothing when it starts (the last build
# step proves it by running every graph with no network). deploy/README.md tells how to run it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv with the project's dependencies ------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/holotrack
# What `pip install .` reads: the metadata (with the README it names) and both packages.
COPY pyproject.toml README.md ./
COPY webapp/ webapp/
COPY swarm/ swarm/
# mediapipe depends on opencv-contrib-python, which needs libGL at import time; the headless
# build offers the same cv2 without it (the Makefile does the same swap). The project itself
# is removed again: the code runs from /app, next to the static/ and templates/ it serves.
RUN /opt/holotrack/bin/pip install --upgrade pip \
 && /opt/holotrack/bin/pip install . \
 && /opt/holotrack/bin/pip uninstall -y opencv-contrib-python \
 && /opt/holotrack/bin/pip install --force-reinstall --no-deps opencv-python-headless==4.11.0.86 \
 && /opt/holotrack/bin/pip uninstall -y holotrack

# -- runtime: the virtualenv, the code, an unprivileged user --------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 holotrack \
 && useradd --system --uid 10001 --gid holotrack --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin holotrack \
 && install -d -o holotrack -g holotrack /var/cache/holotrack/matplotlib
COPY --from=build /opt/holotrack /opt/holotrack
WORKDIR /app
COPY webapp/ webapp/
COPY static/ static/
COPY templates/ templates/
ENV PATH=/opt/holotrack/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/var/cache/holotrack/matplotlib \
    HOLOTRACK_PORT=8080 \
    HOLOTRACK_LOG_FORMAT=json
USER holotrack:holotrack
# mediapipe imports matplotlib, which builds its font cache on first import: do it now, once.
# Then every graph the server uses loads and runs a blank frame with no network at all.
RUN --network=none python -c "import matplotlib.font_manager" \
 && python -c "from webapp.inference import StillEngine, TrackEngine, warm; \
from webapp.protocol import Track; \
[warm(e) for e in (StillEngine(), TrackEngine(Track.HOLISTIC), TrackEngine(Track.POSE))]"
EXPOSE 8080
# Liveness only: the process answers. Readiness (room for one more session) is /readyz,
# for the balancer or the orchestrator; an unhealthy container is not a full one.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HOLOTRACK_PORT', '8080') + '/healthz', timeout=4)"]
# SIGTERM closes every session with 1001 and a reason, then the server exits within seconds.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "webapp", "--host", "0.0.0.0"]
