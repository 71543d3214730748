# Two entry points for a fresh Debian machine with Python >= 3.11 and make:
#   make run   install everything, then serve the embedded demo bundle
#   make test  install everything (with the dev extra), then run the tests
# Installs are stamped against pyproject.toml, so a second run reinstalls nothing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
BUNDLE ?= checkpoints/demo
PYTEST_ARGS ?=

.PHONY: run test lint system-deps browser-deps clean-venv

run: $(VENV)/.installed-run
	$(BIN)/icot serve --bundle $(BUNDLE) --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check icot.py model server training clients bench tests

system-deps:
	@command -v espeak-ng >/dev/null 2>&1 || { \
		echo "installing espeak-ng (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; }
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
		echo "installing nginx (apt-get; tests/docker runs it on loopback in front of two replicas)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }

# Debian's Chromium for the browser client's tests (tests/clients): never a downloaded browser
browser-deps:
	@test -x /usr/bin/chromium || { \
		echo "installing chromium (apt-get; tests/clients drives it with Playwright)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml $(VENV)/bin/python | system-deps
	$(BIN)/pip install -q -e .
	$(BIN)/python -c "import model, server" 
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/bin/python | system-deps browser-deps
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -c "import model, server, pytest, faster_whisper"
	touch $@ $(VENV)/.installed-run

clean-venv:
	rm -rf $(VENV)
