# Two entry points (see README):
#   make baseline   set up .venv with the core install (from requirements/core.txt; extras already
#                   installed stay) and run the baseline scenario
#   make test       set up .venv with every extra (from requirements/all.txt), the browser, npm and the
#                   dashboard's page scripts; check the lock, lint and run the whole test suite
#   make dashboard  set up every extra (the dashboard's among them) and open the dashboard on localhost
#   make dev        set up .venv with every extra, nothing else
#   make lock       rewrite requirements/*.txt after a change of pyproject.toml
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv installs the locked requirements; it is itself installed with pip into .tools, locked
# with its hashes in requirements/tools.txt
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

# every extra into .venv, nothing run (for working on the code)
dev: venv
	$(call install,all)

.PHONY: dev baseline test dashboard dashboard-assets npm browser check-python venv lock lock-check

check-python:
	@$(PYTHON) -c 'import sys; v = sys.version.split()[0]; sys.exit(0 if sys.version_info >= (3, 12) else f"mittelbau needs Python 3.12 or newer (Mesa 3.5 requires it); {sys.executable} is {v}. Install 3.12 and keep the .python-version file, or name it for make, e.g. make baseline PYTHON=python3.12")'

$(UV): requirements/tools.txt | check-python
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		--requirement requirements/tools.txt
	touch $(UV)

$(BIN)/python: | $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)

venv: check-python $(UV) $(BIN)/python
	@$(BIN)/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "$(VENV) was made with Python < 3.12: delete it and rerun")'

# sync: exactly the locked packages, nothing else; then the project itself without resolving,
# built by the locked build backend
define install
	$(UV) pip sync --quiet --python $(BIN)/python requirements/$(1).txt
	$(call project)
endef

# the locked packages of requirements/$(1).txt added, the others left as they are (so that the
# baseline run keeps the extras of make dev or make test)
define add
	$(UV) pip install --quiet --python $(BIN)/python --requirement requirements/$(1).txt
	$(call project)
endef

define project
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --build-constraints requirements/build.txt -e .
endef

baseline: venv
	$(call add,core)
	$(BIN)/mittelbau run baseline --out results/baseline --overwrite

lock: $(UV)
	bash requirements/lock.sh $(UV)

lock-check: $(UV)
	bash requirements/lock.sh $(UV) --check

# the dashboard's page scripts, fetched once with npm into Solara's asset cache (offline page)
dashboard-assets: npm
	$(BIN)/python -m mittelbau.dashboard.assets

SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
# npm fetches the page scripts; Debian's package when there is none
npm:
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm >/dev/null; }

# Debian's chromium for the browser test (the test drives it with Playwright, no download)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@chromium --version 2>/dev/null

dashboard: venv
	$(call install,all)
	$(MAKE) dashboard-assets
	$(BIN)/mittelbau dashboard

test: venv browser lock-check
	$(call install,all)
	$(MAKE) dashboard-assets
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -W error::FutureWarning
