# One entry point for people and CI. Needs only python3 (3.11+), git and make.
# `make demo` runs patwarden end to end on the built-in emulator; `make test` runs every check CI runs.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Keep the lock honest: installs use exactly the versions in uv.lock. --compile-bytecode: every
# module is compiled once at install, not again by each command (docs/performance.md#start-up).
SYNC := $(UV) sync --frozen --all-extras --quiet --compile-bytecode

.PHONY: demo test test-dates check lint typecheck format install clean

# uv itself is pinned by hash (.ci/uv-requirements.txt, uv==$(UV_VERSION)): pip refuses any other file.
UV_REQUIREMENTS := .ci/uv-requirements.txt

$(UV): $(UV_REQUIREMENTS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --require-hashes --only-binary=:all: -r $(UV_REQUIREMENTS)

# The Makefile is a prerequisite so that a change of $(SYNC) reaches existing checkouts. The editable
# project's own modules live outside site-packages: compile them too.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml Makefile
	$(SYNC)
	$(VENV)/bin/python -m compileall -q src
	@touch $@

install: $(VENV)/.synced

demo: install
	$(VENV)/bin/patwarden demo

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

# Azurite (Microsoft's Azure Storage emulator) for the Blob state backend's tests, at the version
# pinned in tests/azurite/package-lock.json.
AZURITE_DIR := tests/azurite
$(AZURITE_DIR)/node_modules/.installed: $(AZURITE_DIR)/package.json $(AZURITE_DIR)/package-lock.json
	cd $(AZURITE_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

.PHONY: azurite
azurite: $(AZURITE_DIR)/node_modules/.installed

# `make test` is what CI runs: lint, types, then the whole suite.
test: lint typecheck example-plugin azurite
	$(VENV)/bin/pytest -n 2 --dist loadgroup
	$(MAKE) --no-print-directory test-dates

# The date-sensitive tests (marker `dates`, listed in tests/conftest.py) again at three pinned
# dates: before the 2026-12-01 global-PAT retirement, just after it, and a year ahead of today.
# PATWARDEN_TEST_NOW moves the tests' clock, the emulator's and the CLI's (tests/support/clock.py).
PINNED_DATES ?= 2026-11-15T09:00:00Z 2026-12-02T09:00:00Z $(shell $(PYTHON) -c "import datetime as d; print((d.datetime.now(d.UTC) + d.timedelta(days=365)).strftime('%Y-%m-%dT09:00:00Z'))")

test-dates: install
	@for now in $(PINNED_DATES); do \
	  echo "== date-sensitive tests at $$now"; \
	  PATWARDEN_TEST_NOW=$$now $(VENV)/bin/pytest -n 2 --dist loadgroup -q -m dates || exit 1; \
	done

# The example sink plugin through patwarden's shipped contract test (patwarden.plugins.testing):
# installed into the venv for its own tests, then removed so the suite sees only built-in kinds.
EXAMPLE_PLUGIN := examples/patwarden-sink-env-file
.PHONY: example-plugin
example-plugin: install
	$(UV) pip install --quiet --python $(VENV)/bin/python --no-deps -e $(EXAMPLE_PLUGIN)
	cd $(EXAMPLE_PLUGIN) && $(CURDIR)/$(VENV)/bin/pytest -q -p no:cacheprovider; status=$$?; \
	  cd $(CURDIR) && $(UV) pip uninstall --quiet --python $(VENV)/bin/python \
	    patwarden-sink-env-file; exit $$status

check: test

# The sdist and the wheel (`twine check`ed) and the container image's hash-pinned requirements,
# exported from uv.lock with the state backends' extras (docs/deploy/container.md).
DIST ?= dist
.PHONY: dist deploy-check
dist: install
	rm -rf $(DIST)
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(VENV)/bin/python -m build --installer uv --outdir $(DIST) .
	$(VENV)/bin/twine check --strict $(DIST)/*
	$(UV) export --frozen --no-dev --no-emit-project --extra postgresql --extra azblob \
	  --format requirements-txt --quiet --output-file $(DIST)/requirements.txt

# Every deployment recipe's check (also part of `make test`): tests/deploy/, docs/deploy.md.
deploy-check: install
	$(VENV)/bin/pytest -n 2 -q tests/deploy

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
