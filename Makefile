# countclip: `make start` runs the service on the embedded default model; `make test` runs every test.
# Install steps are stamp-file driven: idempotent, and a second run does nothing.
SHELL := /bin/bash
VENV := training/.venv
PY := $(VENV)/bin/python
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
# The CPU wheel that lies on disk; a range would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# The count core compiled with mypyc (training/build_native.py); optional: without it
# countclip.counts is the pure-Python module, with the same results, about 1.7x slower.
NATIVE := training/countclip/_mypyc/build.json
# The count core's decision in C, for `countclip mine` (training/build_fastcount.py); optional
# too: without it mining uses the Python core, with the same output, about 5x slower.
FASTCOUNT := training/countclip/.fastcount-built

.PHONY: setup setup-node setup-python setup-system native start test test-ts test-python typecheck clean

setup: setup-system setup-node setup-python

setup-system: $(EMOJI_FONT)
$(EMOJI_FONT):
	@if [ "$$(id -u)" = 0 ]; then (apt-get install -y -q fonts-noto-color-emoji >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q fonts-noto-color-emoji >/dev/null)); \
	else echo "note: install Debian's fonts-noto-color-emoji for the synthetic world (sudo apt-get install fonts-noto-color-emoji)"; fi

setup-node: node_modules/.stamp
node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --onnxruntime-node-install=skip
	@touch $@

setup-python: $(VENV)/.stamp $(NATIVE) $(FASTCOUNT)
$(VENV)/.stamp: training/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e "training[dev]"
	@touch $@

# Rebuilt when the count core changes; never fails the set-up (the script says why it did not build).
native: $(NATIVE) $(FASTCOUNT)
$(NATIVE): $(VENV)/.stamp training/countclip/counts.py training/countclip/counts_lexicon.py \
           training/countclip/_native.py training/build_native.py
	-$(PY) training/build_native.py

$(FASTCOUNT): $(VENV)/.stamp training/countclip/_fastcount.c training/build_fastcount.py
	-$(PY) training/build_fastcount.py
	@touch $@

start: setup
	npm start

test: setup
	npm test
	cd training && .venv/bin/python -m pytest

clean:
	rm -rf node_modules $(VENV) training/countclip/_mypyc training/countclip/_fastcount*.so $(FASTCOUNT)
