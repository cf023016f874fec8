# The two commands a person needs: `make run` (the main job, then the UI, on the local default)
# and `make test`.
SHELL := /bin/bash
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: run test setup tools lint materialize bench

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

tools: setup
	bash tests/install-servers.sh

run: setup
	mkdir -p "$(DAGSTER_HOME)"
	$(UV) run dataops materialize --all
	$(UV) run dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

materialize: setup
	$(UV) run dataops materialize --all

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

test: tools lint
	$(UV) run pytest
