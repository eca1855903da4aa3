# Two commands set everything up on a fresh Debian machine with Python 3.11:
#   make run   - create .venv, install, start the server on http://127.0.0.1:8080
#   make test  - install the test extras into the same .venv and run the whole suite
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ARGS ?=

.PHONY: run test lint cluster clean system-deps

# Debian packages the tests drive (Chromium, nginx, Prometheus, buildah...): installed when
# run as root, otherwise one line naming the apt-get command. deploy/system-deps.sh lists them.
system-deps:
	@bash deploy/system-deps.sh test

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	@# mediapipe depends on opencv-contrib-python, which needs libGL at import time;
	@# the headless build offers the same cv2 without it.
	$(PIP) uninstall --quiet --yes opencv-contrib-python
	$(PIP) install --quiet --force-reinstall --no-deps opencv-python-headless==4.11.0.86
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e '.[test,bench]'
	$(PIP) uninstall --quiet --yes opencv-contrib-python
	$(PIP) install --quiet --force-reinstall --no-deps opencv-python-headless==4.11.0.86
	touch $@

run: $(VENV)/.installed
	$(PY) -m webapp $(ARGS)

# Two single-worker replicas behind Debian's nginx on http://127.0.0.1:8000, until Ctrl-C
# (deploy/README.md). Server flags go after --: make cluster ARGS="-- --max-sessions 4".
cluster: $(VENV)/.installed
	$(PY) -m deploy.cluster $(ARGS)

# What make test checks before the tests, alone: ruff's lint and format, mypy --strict.
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: system-deps lint
	$(PY) -m pytest $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The avatar page's JavaScript (three.js, three-vrm, qrcode-generator) from the npm registry, pinned by
# package-lock.json; served from node_modules/, no build step. Without npm, system-deps.sh
# installs Debian's npm as root or names it in one line, and the server still runs: /avatar
# then says what is missing. A failed install leaves no stamp, so the next make tries again.
node_modules/.installed: package.json package-lock.json
	@if bash deploy/system-deps.sh run; then \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@ \
	  || echo "npm ci failed; /avatar says what is missing, the rest of the server runs" >&2; \
	fi

# make cluster serves /avatar from every replica, as make run does.
run test cluster: node_modules/.installed

# The server image, holotrack:0.1.0 (deploy/README.md): with Docker where an engine runs,
# else with Debian's buildah on a Python base made here from Debian's packages.
# tests/test_image.py builds it the same way and serves from it; make test runs it with the
# rest, make image-test runs only it.
.PHONY: image image-test
image:
	bash deploy/image/build.sh

image-test: system-deps $(VENV)/.installed-test
	$(PY) -m pytest tests/test_image.py $(ARGS)
