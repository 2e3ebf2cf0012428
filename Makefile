# Two entry points (see README):
#   make baseline   set up .venv with the core install and run the baseline scenario
#   make test       set up .venv with every extra, the browser and the dashboard's page scripts,
#                   and run lint and the whole test suite
#   make dashboard  set up the dashboard extra and open the dashboard on localhost
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: baseline test dashboard dashboard-assets browser check-python venv

check-python:
	@$(PYTHON) -c 'import sys; v = sys.version.split()[0]; sys.exit(0 if sys.version_info >= (3, 12) else f"mittelbau needs Python 3.12 or newer (Mesa 3.5 requires it); {sys.executable} is {v}. Install 3.12 and keep the .python-version file, or run make PYTHON=python3.12")'

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: check-python $(BIN)/python
	@$(BIN)/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "$(VENV) was made with Python < 3.12: delete it and rerun")'

baseline: venv
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/mittelbau run scenarios/baseline.toml --out results/baseline

# the dashboard's page scripts, fetched once with npm into Solara's asset cache (offline page)
dashboard-assets:
	$(BIN)/python -m mittelbau.dashboard.assets

# Debian's chromium for the browser test (the test drives it with Playwright, no download)
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

dashboard: venv
	$(BIN)/python -m pip install --quiet -e '.[dashboard]'
	$(MAKE) dashboard-assets
	$(BIN)/mittelbau dashboard

test: venv browser
	$(BIN)/python -m pip install --quiet -e '.[all]'
	$(MAKE) dashboard-assets
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -W error::FutureWarning
