# Noctis Lab. Quick start: `make lab` (set up and start JupyterLab) and `make test`.
# Every target sets up what it needs; setup is skipped when nothing it depends on changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.noctis-installed
CHROMIUM := /usr/lib/chromium/chromium
# The home: NOCTIS_HOME when set, else this checkout (noctis.toml marks it).
NOCTIS_HOME ?= $(CURDIR)
DEMO := $(NOCTIS_HOME)/data/demo
DEMO_STAMP := $(DEMO)/.complete
HU_DEMO_STAMP := $(DEMO)/.hu-complete
HUB_ENV := .hub-env
HUB_STAMP := $(HUB_ENV)/.complete
# Voila inside any Jupyter server of the venv (noctis-lab lab) uses our offline template.
LAB_VOILA := $(VENV)/etc/jupyter/voila.py
PYTEST_ARGS ?=

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export NOCTIS_HOME

.PHONY: help setup lab test lint format bench demo chromium postgresql bubblewrap poppler clean doctor report dashboards services mlflow

help:
	@echo "make lab    set up everything and start JupyterLab (prints the URL)"
	@echo "make test   set up everything and run the whole test suite"
	@echo "make lint   ruff and mypy"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make demo   (re)write the demo data under $(DEMO)"
	@echo "make report        HU and AI reports (HTML, PDF, summary JSON) under reports/"
	@echo "make dashboards    serve the Voila dashboards on 127.0.0.1 with a token"
	@echo "make services      PostgreSQL + MLflow server for a team, on loopback"
	@echo "make mlflow        the MLflow UI on the project's store (runs view), on 127.0.0.1"

setup: $(STAMP)

# The installer: uv, pinned, into the venv (pip installs it). It fetches and unpacks the
# ~230 pinned packages in parallel and leaves byte-compiling to first use, where pip works
# one package at a time and compiles ~19k files up front (the first start took minutes).
# torch's wheel is fetched by pip: pip follows this machine's own configuration for where
# the CPU build lies (uv reads no pip configuration); uv installs it from that folder.
UV_VERSION := 0.13.8
UV := $(BIN)/uv
TORCH_PIN = $(shell grep -E '^torch==' requirements.txt)
WHEELS := $(VENV)/wheels

$(STAMP): requirements.txt requirements.lock pyproject.toml $(wildcard extensions/*/pyproject.toml)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile "uv==$(UV_VERSION)"
	$(BIN)/python -m pip download -q --no-deps -d $(WHEELS) "$(TORCH_PIN)"
	$(UV) pip install --python $(BIN)/python -q --find-links $(WHEELS) \
		-r requirements.txt -c requirements.lock
	rm -rf $(WHEELS)
	$(UV) pip install --python $(BIN)/python -q --no-deps -e . \
		$(foreach ext,$(wildcard extensions/*/pyproject.toml),-e $(dir $(ext)))
	@# Editable installs place neither the server config nor the prebuilt frontend:
	@# link the committed labextension build (what `jupyter labextension develop` does)
	@# and enable the server extension in the venv.
	mkdir -p $(VENV)/share/jupyter/labextensions
	ln -sfn $(CURDIR)/extensions/noctis_rooms/noctis_rooms/labextension \
		$(VENV)/share/jupyter/labextensions/noctis-rooms
	install -D -m 644 extensions/noctis_rooms/jupyter-config/jupyter_server_config.d/noctis_rooms.json \
		$(VENV)/etc/jupyter/jupyter_server_config.d/noctis_rooms.json
	@touch $@

$(LAB_VOILA): $(STAMP) noctis_lab/reports/_voila.py $(wildcard noctis_lab/reports/jupyter/voila/templates/noctis/*)
	$(BIN)/python -c 'from noctis_lab.reports._voila import install_lab_voila as i; i("$(VENV)")'

chromium:
	@if [ -x $(CHROMIUM) ]; then :; else \
		echo "Installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

$(DEMO_STAMP): $(STAMP)
	$(BIN)/noctis-lab demo --out $(DEMO)

# The HU part of the demo (about half a minute); `make lab` trains the AI part in the background.
$(HU_DEMO_STAMP): $(STAMP)
	$(BIN)/noctis-lab demo --out $(DEMO) --no-ai

demo: $(STAMP)
	$(BIN)/noctis-lab demo --out $(DEMO) --force

lab: $(HU_DEMO_STAMP) $(LAB_VOILA)
	$(BIN)/noctis-lab demo --out $(DEMO) --ai-in-background
	$(BIN)/noctis-lab lab

mlflow: $(STAMP)
	$(BIN)/noctis-lab mlflow

# PostgreSQL's server binaries (Debian) for the history tests against a real server.
postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
		echo "Installing Debian's postgresql for the database tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

# bubblewrap (Debian) for the AI sandbox: untrusted TorchScript / torch.export model files
# are checked and evaluated only in a worker without network or write access.
bubblewrap:
	@if command -v bwrap >/dev/null 2>&1; then :; else \
		echo "Installing Debian's bubblewrap for the AI model sandbox"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq bubblewrap >/dev/null; \
	fi

# poppler-utils (Debian): pdftotext and pdftoppm read the PDF reports back in the tests.
poppler:
	@if command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1; then :; else \
		echo "Installing Debian's poppler-utils for the PDF report tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq poppler-utils >/dev/null; \
	fi

# A throwaway JupyterHub (own venv + configurable-http-proxy) for the multi-user test;
# kept out of the project venv on purpose (docs/jupyterhub/README.md).
$(HUB_STAMP): $(STAMP) docs/jupyterhub/make_test_env.sh
	sh docs/jupyterhub/make_test_env.sh $(CURDIR)/$(HUB_ENV) >/dev/null
	@touch $@

test: $(DEMO_STAMP) $(HUB_STAMP) $(LAB_VOILA) chromium postgresql bubblewrap poppler
	NOCTIS_JUPYTERHUB=$(CURDIR)/$(HUB_ENV)/venv/bin/jupyterhub \
	NOCTIS_CHP=$(CURDIR)/$(HUB_ENV)/chp/node_modules/.bin/configurable-http-proxy \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

services: $(STAMP) postgresql
	$(BIN)/noctis-lab services up

lint: $(STAMP)
	$(BIN)/ruff check noctis_lab tests bench extensions
	$(BIN)/ruff format --check noctis_lab tests bench extensions
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format noctis_lab tests bench extensions
	$(BIN)/ruff check --fix noctis_lab tests bench extensions

bench: $(DEMO_STAMP)
	$(BIN)/python bench/run_all.py

report: $(DEMO_STAMP)
	$(BIN)/noctis-lab report hu --out reports
	$(BIN)/noctis-lab report ai --out reports

dashboards: $(DEMO_STAMP)
	$(BIN)/noctis-lab dashboards

doctor: $(STAMP)
	$(BIN)/noctis-lab doctor

clean:
	rm -rf $(VENV) $(HUB_ENV) data/demo .pytest_cache .mypy_cache .ruff_cache
