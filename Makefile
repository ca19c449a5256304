# mirim-reduce: native set-up, demo, tests and benchmarks.
#   make demo    create .venv from the lock file, build the demo CRDS context, simulate and reduce the demo
#   make test    run the test suite (creates .venv first)
#   make faults  the fault suite (kills, signals, full/read-only disks, damaged references and inputs; ~14 min, root for mounts)
#   make reference  regenerate tests/data/reference from a fresh demo run (after a change of the products)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKDIR ?= mirim-demo
JOBS ?= 2
REFERENCE ?= tests/data/reference
REFERENCE_WORKDIR ?= $(or $(TMPDIR),/tmp)/mirim-reference-demo

.PHONY: venv demo test test-fast bench lock clean-demo reference faults

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock requirements-build.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-build.lock
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: venv
	$(BIN)/mirim-reduce demo --workdir $(WORKDIR) --jobs $(JOBS)

# Like jwst's "okify": on purpose only, when a change of the products is intended (say why in the commit).
reference: venv
	rm -rf $(REFERENCE_WORKDIR)
	$(BIN)/mirim-reduce demo --workdir $(REFERENCE_WORKDIR) --jobs $(JOBS)
	$(BIN)/mirim-reduce write-reference $(REFERENCE_WORKDIR)/products --out $(REFERENCE)
	$(BIN)/mirim-reduce verify $(REFERENCE_WORKDIR)/products --reference $(REFERENCE) --exact
	rm -rf $(REFERENCE_WORKDIR)

test: venv
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

# Not part of `make test` (too long for CI). FAULTS_ARGS: e.g. --only kill9-stage3,disk-full --keep
FAULTS_TMP ?= $(or $(TMPDIR),/tmp)/mirim-faults
faults: venv
	$(BIN)/python -m faults.run_faults --tmp $(FAULTS_TMP) --jobs $(JOBS) $(FAULTS_ARGS)

bench: venv
	$(BIN)/python -m benchmarks

# Refresh the lock (exact versions and hashes) after editing pyproject.toml dependencies.
lock:
	$(BIN)/pip-compile --quiet --generate-hashes --extra test --strip-extras --allow-unsafe \
	  --constraint containers/constraints-py3112.txt --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links \
	  --output-file requirements-build.lock requirements-build.in

clean-demo:
	rm -rf $(WORKDIR)
include containers/Makefile.inc
