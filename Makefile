# lilypad: set up the whole toolchain from nothing and run things.
#
# The machines reach only PyPI, npm, Debian's apt mirror and the Go module
# proxy, so everything comes from those: the venv (pyproject.toml pins), solcjs +
# anvil + OpenZeppelin (package.json), the Docker engine and base images (apt), Go
# (apt's golang-go, unless a `go` is installed) for the template helper, and
# kubo's ipfs (scripts/_toolchain/go/kubo, built with that Go).
# `make setup` is idempotent; a second run only checks and returns.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := setup
.DELETE_ON_ERROR:

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
VENV := $(ROOT)/.venv
ANVIL_BIN := $(ROOT)/node_modules/@foundry-rs/anvil-linux-amd64/bin
# The interpreter that creates the venv (looked up before PATH changes below).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell command -v python3)
endif

export PATH := $(VENV)/bin:$(ANVIL_BIN):$(PATH)
export VIRTUAL_ENV := $(VENV)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends
DOCKERD_LOG ?= /var/log/lilypad-dockerd.log

# Test budgets and knobs (override on the command line or in the environment).
LILYPAD_FUZZ_EXAMPLES ?= 25
FUZZ_EXAMPLES ?= 500
# Each test run starts its own anvil on a free port, so concurrent runs never
# share (or kill) one another's chain on 8545.
APE_FOUNDRY_HOST ?= auto
ARGS ?=

PY_STAMP := $(VENV)/.lilypad-installed
NODE_STAMP := $(ROOT)/node_modules/.lilypad-installed

.PHONY: setup venv node solc docker-registry docker-engine base-images gotemplate compile lint test fuzz demo bench clean distclean

setup: venv node solc docker-engine base-images gotemplate kubo bacalhau docker-registry

# --- Python: .venv with the package and its test extra (hypothesis, schemathesis,
# ruff, mypy), reinstalled only when pyproject.toml changed; recreated
# when it was moved (venvs are not relocatable: scripts hard-code the path) --
venv:
	@want="$$(sha256sum pyproject.toml | cut -d' ' -f1)"; \
	usable() { "$(VENV)/bin/python" -c '' 2>/dev/null && [[ "$$(head -n1 "$(VENV)/bin/pip" 2>/dev/null)" == "#!$(VENV)/bin/"* ]]; }; \
	if [[ "$$(cat "$(PY_STAMP)" 2>/dev/null)" == "$$want" ]] && usable; then exit 0; fi; \
	if ! usable; then \
	    echo "setup: creating $(VENV)"; rm -rf "$(VENV)"; \
	    if ! "$(PYTHON)" -m venv "$(VENV)" 2>/dev/null; then \
	        rm -rf "$(VENV)"; $(SUDO) apt-get update -qq; $(APT_INSTALL) python3-venv >/dev/null; \
	        "$(PYTHON)" -m venv "$(VENV)"; \
	    fi; \
	fi; \
	echo "setup: pip install -e '.[test]'"; \
	"$(VENV)/bin/pip" install -q -e '.[test]'; \
	echo "$$want" >"$(PY_STAMP)"

# --- npm: solcjs, anvil, OpenZeppelin; `npm ci` only when package*.json changed
node:
	@want="$$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"; \
	if [[ -f "$(NODE_STAMP)" && "$$(cat "$(NODE_STAMP)")" == "$$want" ]]; then exit 0; fi; \
	if ! command -v npm >/dev/null; then \
	    echo "setup: installing nodejs/npm (apt)"; $(SUDO) apt-get update -qq; $(APT_INSTALL) nodejs npm >/dev/null; \
	fi; \
	if [[ ! -f "$(NODE_STAMP)" && -f node_modules/.package-lock.json ]] && npm ls --all >/dev/null 2>&1; then \
	    : "node_modules already matches package.json (installed before stamps existed)"; \
	else \
	    echo "setup: npm ci"; npm ci --no-audit --no-fund --loglevel=error; \
	fi; \
	echo "$$want" >"$(NODE_STAMP)"

# --- solc: ~/.solcx/solc-v<version> -> scripts/_toolchain/solc-wrapper.js ----------
solc: node
	@bash scripts/_toolchain/install-solc.sh

# --- Docker engine (apt) and local base images (no registry) ----------------
docker-engine:
	@if ! command -v dockerd >/dev/null; then \
	    echo "setup: installing docker.io (apt)"; \
	    $(SUDO) apt-get update -qq; DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq docker.io >/dev/null; \
	fi; \
	if docker info >/dev/null 2>&1; then exit 0; fi; \
	if ! pidof dockerd >/dev/null; then \
	    echo "setup: starting dockerd (log: $(DOCKERD_LOG))"; \
	    $(SUDO) bash -c 'setsid nohup dockerd >>"$(DOCKERD_LOG)" 2>&1 </dev/null &'; \
	fi; \
	for _ in $$(seq 120); do docker info >/dev/null 2>&1 && exit 0; sleep 0.5; done; \
	echo "setup: dockerd did not come up; last lines of $(DOCKERD_LOG):" >&2; \
	$(SUDO) tail -n 30 "$(DOCKERD_LOG)" >&2 || true; exit 1

base-images: docker-engine
	@bash scripts/_toolchain/base-images.sh

# --- The Go template helper (lilypad/modules/gotemplate): module templates are
# rendered by Go's own text/template. Built into ${XDG_CACHE_HOME:-~/.cache}/lilypad/bin
# under a name that hashes its source, so this does nothing until the source changes;
# Go's build cache (GOCACHE) is reused. See lilypad/modules/gotemplate_helper.py.
gotemplate: venv
	@if python -m lilypad.modules.gotemplate_helper --check; then exit 0; fi; \
	if ! command -v go >/dev/null && [[ ! -x /usr/local/go/bin/go && ! -x /usr/lib/go/bin/go ]]; then \
	    echo "setup: installing golang-go (apt)"; $(SUDO) apt-get update -qq; $(APT_INSTALL) golang-go >/dev/null; \
	fi; \
	python -m lilypad.modules.gotemplate_helper >/dev/null

# --- Go-built programs: kubo's ipfs and bacalhau, from the Go module proxy ----
# Pinned in scripts/_toolchain/go/<program>/go.mod + go.sum; installed outside the
# clone in ${LILYPAD_BIN_DIR:-${XDG_CACHE_HOME:-~/.cache}/lilypad/bin} (where
# lilypad.toolchain looks). A second run only compares a stamp and returns.
# `make setup` builds both (cold: ~650 + ~720 CPU-seconds, 83 + 75 MB; see
# docs/infra-notes.md). bacalhau is the `--executor bacalhau` back end.
.PHONY: go-tools kubo bacalhau
go-tools: kubo bacalhau

kubo:
	@bash scripts/_toolchain/build-go-tools.sh ipfs

bacalhau:
	@bash scripts/_toolchain/build-go-tools.sh bacalhau

# --- Debian's docker-registry: Bacalhau compute nodes run only images with a registry
# digest, so the Bacalhau executor pushes each image to a registry on 127.0.0.1 first
# (lilypad/executor/bacalhau/cluster.py runs it; no service is started).
docker-registry:
	@if command -v docker-registry >/dev/null; then exit 0; fi; \
	echo "setup: installing docker-registry (apt)"; $(SUDO) apt-get update -qq; $(APT_INSTALL) docker-registry >/dev/null

# --- Everyday targets ---------------------------------------------------------
compile: venv node solc
	ape compile

# ruff and mypy on the package (settings in pyproject.toml; mypy checks its `packages`);
# both run, so one pass shows every finding.
lint: venv
	@rc=0; echo "ruff check lilypad"; ruff check lilypad || rc=1; echo "mypy"; mypy || rc=1; exit $$rc

test: setup lint
	LILYPAD_FUZZ_EXAMPLES=$(LILYPAD_FUZZ_EXAMPLES) LILYPAD_FUZZ_DERANDOMIZE=1 APE_FOUNDRY_HOST=$(APE_FOUNDRY_HOST) \
	    ape test tests -q $(ARGS)

fuzz: setup
	LILYPAD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) APE_FOUNDRY_HOST=$(APE_FOUNDRY_HOST) \
	    ape test tests -q -m fuzzing $(ARGS)

# A local network of real processes (anvil, contracts, solver, provider, mediator),
# then `lilypad run cowsay:v0.0.1 -i Message=...` end to end, then a balance summary.
MESSAGE ?= Hello from the lilypad demo!
demo: setup
	python -m lilypad.devnet.demo "$(MESSAGE)"

# The market's digital twin (docs/twin.md): each cheating strategy's profit over honesty,
# the rates at which cheating stops paying, collusion per panel size; report and plots in TWIN_OUT.
TWIN_OUT ?= twin-results
TWIN_ARGS ?= --onchain 200
.PHONY: twin
twin: setup compile
	lilypad twin run --out $(TWIN_OUT) $(TWIN_ARGS)

# Benchmarks on the local devnet (real chain, services and containers): writes
# bench/results/latest.json and latest.md and prints the report (< 15 min).
# `make bench-quick` is the < 3 min smoke; BENCH_ARGS="--only gas,matching" picks sections.
BENCH_ARGS ?=
bench: setup compile
	python bench/run.py $(BENCH_ARGS)

.PHONY: bench-quick
bench-quick: setup compile
	python bench/run.py --quick $(BENCH_ARGS)

# Long reliability and security runs (not part of `make test`): the protocol's
# Hypothesis stateful fuzz at a large budget (money invariants after every step),
# the solver-API (schemathesis) and parser fuzz at a large budget, and the whole
# security suite (hostile input, sandbox, contract attacks), then the fault campaigns
# (tests/faults, marked soak: services SIGKILLed during a batch of jobs, tally in
# .cache/fault-tally.json; last, the Docker engine restarted mid-job).
SOAK_FUZZ_EXAMPLES ?= 200
SOAK_SECURITY_EXAMPLES ?= 1000
.PHONY: soak
soak: setup
	LILYPAD_FUZZ_EXAMPLES=$(SOAK_FUZZ_EXAMPLES) APE_FOUNDRY_HOST=$(APE_FOUNDRY_HOST) \
	    ape test tests/contracts/test_protocol_fuzz.py tests/contracts/test_contract_attacks.py -q $(ARGS)
	mkdir -p $(ROOT)/.cache; LILYPAD_SECURITY_EXAMPLES=$(SOAK_SECURITY_EXAMPLES) LILYPAD_SECURITY_TALLY=$(ROOT)/.cache/security-tally.json \
	    python -m pytest tests/security -q -p no:ape_test $(ARGS)
	@cat $(ROOT)/.cache/security-tally.json 2>/dev/null; echo
	APE_FOUNDRY_HOST=$(APE_FOUNDRY_HOST) ape test tests/faults -q -s -m soak --deselect tests/faults/test_docker_restart.py $(ARGS)
	@cat $(ROOT)/.cache/fault-tally.json 2>/dev/null; echo
	# Last: restarting the Docker engine stops every container on the machine.
	APE_FOUNDRY_HOST=$(APE_FOUNDRY_HOST) ape test tests/faults/test_docker_restart.py -q -s -m soak $(ARGS)

clean:
	rm -rf .build .cache contracts/.cache .pytest_cache .hypothesis .mypy_cache .ruff_cache *.egg-info
	find . \( -path ./.venv -o -path ./node_modules -o -path ./.git \) -prune -o \
	    -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf .venv node_modules
