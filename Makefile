# veritrain developer entry points. `make test` installs whatever is missing
# (.venv via pip, node_modules via npm: Foundry binaries, solc, Solidity libs)
# and runs the linters and both test suites. Stamp files make a second `make setup` a no-op.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

# Foundry's real executables ship in these npm packages; forge also needs node
# on PATH for tools/solc. This is the PATH every forge/anvil/slither run uses.
FOUNDRY_PATH := $(CURDIR)/node_modules/@foundry-rs/forge-linux-amd64/bin:$(CURDIR)/node_modules/@foundry-rs/anvil-linux-amd64/bin:$(CURDIR)/node_modules/@foundry-rs/cast-linux-amd64/bin:$(PATH)
WITH_FOUNDRY := PATH="$(FOUNDRY_PATH)"

# slither-analyzer needs web3<8 while veritrain needs web3>=8, so slither gets
# a venv of its own, installed from tools/requirements-audit.txt.
AUDIT_VENV := .venv-audit

VENV_STAMP  := $(VENV)/.installed
AUDIT_STAMP := $(AUDIT_VENV)/.installed
NODE_STAMP  := node_modules/.installed

# The editable install maps the top-level packages that exist when it runs,
# so a package added later (its __init__.py is newer than the stamp) triggers
# a reinstall.
PY_PACKAGES := $(wildcard veritrain/__init__.py protocol/__init__.py solver/__init__.py \
                          verifier/__init__.py marketplace_api/__init__.py)

# $(call require,tool,what it is for)
require = @command -v $(1) >/dev/null 2>&1 || { \
	echo "error: '$(1)' not found on PATH; it is needed $(2)." >&2; exit 1; }

.PHONY: help setup chromium test forge-test pytest build snapshot snapshot-check slither lint clean

help:
	@echo "make setup           install .venv (pip), node_modules (npm) and Chromium (apt) if missing or stale"
	@echo "make test            setup, then lint, forge test, pytest and slither (fails if any fails)"
	@echo "make demo            setup, then \`veritrain demo\`: a whole market on a local chain (under 5 minutes)"
	@echo "make forge-test      Solidity tests only"
	@echo "make pytest          Python tests only"
	@echo "make build           forge build"
	@echo "make snapshot        write the gas snapshot (.gas-snapshot)"
	@echo "make snapshot-check  compare gas usage against .gas-snapshot"
	@echo "make slither         static analysis (installs slither into $(AUDIT_VENV) if missing)"
	@echo "make lint            ruff check, ruff format --check, forge fmt --check and mypy (fails if any fails)"
	@echo "make clean           remove build outputs and caches (keeps the venvs and node_modules)"

setup: $(VENV_STAMP) $(NODE_STAMP) chromium

# The web page tests (tests/web) drive Debian's Chromium with Playwright (Playwright's own browser download
# does not work offline). Installed with apt-get when /usr/bin/chromium is missing; a no-op otherwise.
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; \
	elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	else echo "error: $(CHROMIUM) is missing and installing it needs root: run 'apt-get install -y --no-install-recommends chromium' as root." >&2; exit 1; fi; \
	command -v apt-get >/dev/null 2>&1 || { \
		echo "error: $(CHROMIUM) is missing and apt-get is not available; install Chromium and set VERITRAIN_CHROMIUM to it." >&2; exit 1; }; \
	echo "installing Debian's chromium (for the Playwright page tests)"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends chromium

$(VENV_STAMP): pyproject.toml $(PY_PACKAGES)
	@if [ ! -x $(PY) ]; then \
		command -v $(PYTHON) >/dev/null 2>&1 || { \
			echo "error: '$(PYTHON)' not found on PATH; veritrain needs Python 3.11 to create $(VENV)." >&2; \
			echo "       Install it (e.g. apt-get install python3.11 python3.11-venv) or run 'make PYTHON=/path/to/python3.11 setup'." >&2; \
			exit 1; }; \
		echo "creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV) || exit 1; \
	fi
	$(PIP) install --disable-pip-version-check -e '.[dev]'
	@touch $@

# The lockfile lists every platform build of the Foundry npm packages (darwin, linux, win32; amd64, arm64), as
# current npm (11.x) requires of `npm ci` even for optional packages it will not install. `npm ci` never writes
# package-lock.json; if it rejects the lock, the message says how to regenerate it (and nothing is changed).
$(NODE_STAMP): package.json package-lock.json
	$(call require,node,for the solc shim (tools/solc); install Node.js 20+)
	$(call require,npm,to install Foundry and solc from npm; install npm)
	@log=$$(mktemp); \
	echo "npm ci --no-audit --no-fund"; \
	if npm ci --no-audit --no-fund >"$$log" 2>&1; then \
		grep -v 'install-scripts' "$$log"; rm -f "$$log"; \
	else \
		cat "$$log" >&2; \
		if grep -q 'Missing: .* from lock file' "$$log"; then \
			echo "error: package-lock.json lacks packages this npm ($$(npm --version)) requires (listed above)." >&2; \
			echo "       Regenerate it with 'npm install --package-lock-only --no-audit --no-fund', check the diff" >&2; \
			echo "       (only @foundry-rs/* platform entries should appear) and commit it. If npm reports a package" >&2; \
			echo "       as not published (E404/ETARGET), pin @foundry-rs/* in package.json to a version whose" >&2; \
			echo "       platform builds all exist." >&2; \
		fi; \
		rm -f "$$log"; exit 1; \
	fi
	@touch $@

$(AUDIT_STAMP): tools/requirements-audit.txt
	@if [ ! -x $(AUDIT_VENV)/bin/python ]; then \
		command -v $(PYTHON) >/dev/null 2>&1 || { \
			echo "error: '$(PYTHON)' not found on PATH; it is needed to create $(AUDIT_VENV) for slither." >&2; \
			exit 1; }; \
		echo "creating $(AUDIT_VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(AUDIT_VENV) || exit 1; \
	fi
	$(AUDIT_VENV)/bin/pip install --disable-pip-version-check -r tools/requirements-audit.txt
	@touch $@

# The gas snapshot covers the deterministic tests only: fuzz and invariant
# inputs depend on the build (the fuzzer seeds its dictionary from bytecode), so
# their gas varies between checkouts. After an intended gas change: make snapshot.
# Slither last: it cleans and rebuilds out/ itself.
SNAPSHOT_FILTER := --no-match-test 'testFuzz|invariant'

# Each check runs even when an earlier one failed, so one run reports them all.
LINT_STEPS = \
	echo "== ruff check"; $(VENV)/bin/ruff check . || status=1; \
	echo "== ruff format --check"; $(VENV)/bin/ruff format --check . || status=1; \
	echo "== forge fmt --check"; $(WITH_FOUNDRY) forge fmt --check && echo "Solidity formatted" || status=1; \
	echo "== mypy (settings and files in pyproject.toml)"; $(VENV)/bin/mypy || status=1;

test: setup $(AUDIT_STAMP)
	@status=0; \
	$(LINT_STEPS) \
	echo "== forge test"; \
	$(WITH_FOUNDRY) forge test || status=1; \
	echo "== forge snapshot --check (gas of the deterministic tests)"; \
	$(WITH_FOUNDRY) forge snapshot --check $(SNAPSHOT_FILTER) >forge-snapshot.log 2>&1 \
		&& echo "gas matches .gas-snapshot" \
		|| { status=1; cat forge-snapshot.log; echo "gas changed; if intended, run 'make snapshot'" >&2; }; \
	echo "== pytest"; \
	$(WITH_FOUNDRY) $(VENV)/bin/pytest || status=1; \
	echo "== slither (fails on medium or high findings)"; \
	$(WITH_FOUNDRY) $(AUDIT_VENV)/bin/slither . --config-file slither.config.json --fail-medium >slither.log 2>&1 \
		&& echo "slither: no medium or high findings (details in slither.log)" \
		|| { status=1; cat slither.log; }; \
	if [ $$status -ne 0 ]; then echo "make test: FAILED (see above)" >&2; fi; \
	exit $$status

# A whole market on a private devnet: anvil, API, honest + cheating solvers, verifiers (veritrain/demo.py).
demo: setup
	$(WITH_FOUNDRY) $(VENV)/bin/veritrain demo $(DEMO_ARGS)

forge-test: setup
	$(WITH_FOUNDRY) forge test

pytest: setup
	$(WITH_FOUNDRY) $(VENV)/bin/pytest

build: setup
	$(WITH_FOUNDRY) forge build

snapshot: setup
	$(WITH_FOUNDRY) forge snapshot $(SNAPSHOT_FILTER)

snapshot-check: setup
	$(WITH_FOUNDRY) forge snapshot --check $(SNAPSHOT_FILTER)

slither: setup $(AUDIT_STAMP)
	$(WITH_FOUNDRY) $(AUDIT_VENV)/bin/slither . --config-file slither.config.json --fail-medium

lint: $(VENV_STAMP) $(NODE_STAMP)
	@status=0; \
	$(LINT_STEPS) \
	if [ $$status -ne 0 ]; then echo "make lint: FAILED (see above)" >&2; fi; \
	exit $$status

clean:
	rm -rf out cache broadcast crytic-export test-artifacts .pytest_cache .ruff_cache .mypy_cache *.egg-info
	find . -path ./.venv -prune -o -path ./$(AUDIT_VENV) -prune -o -path ./node_modules -prune -o -name __pycache__ -type d -exec rm -rf {} +
