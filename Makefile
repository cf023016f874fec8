# The two commands a person needs: `make run` (the main job, then the UI, on the local default)
# and `make test`. uv is the one on PATH, or one scripts/uv.sh installs into .tools/.
SHELL := /bin/bash
DAGSTER_HOME := $(or $(DAGSTER_HOME),$(CURDIR)/.dagster_home)
export DAGSTER_HOME
UV := $(shell $(CURDIR)/scripts/uv.sh)
ifeq ($(UV),)
$(error no uv: scripts/uv.sh could not install one, see its message above)
endif
BIN := $(CURDIR)/.venv/bin
# The sales location pseudonymises share views with a key from its environment. Locally it is a
# random key made once in .dataops/ (git-ignored, mode 600); deployments take it from the secret store.
DEV_KEY := $(CURDIR)/.dataops/dev-pseudonym.key
export DATAOPS_PSEUDONYM_KEY ?= $(shell mkdir -p $(CURDIR)/.dataops && ([ -s $(DEV_KEY) ] || (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' > $(DEV_KEY))) && cat $(DEV_KEY))
HOST ?= 127.0.0.1
PORT ?= 3000
API_PORT ?= 8080

.PHONY: run test setup tools lint materialize

setup:
	$(UV) sync --frozen

tools: setup
	bash tests/install-servers.sh

# Only what was never materialised runs, so a second `make run` starts the UI in seconds.
run: setup
	$(BIN)/dataops materialize --missing
	$(BIN)/dataops serve --host $(HOST) --port $(API_PORT) --dagster-url http://$(HOST):$(PORT) & API=$$!; trap "kill $$API" EXIT; \
	echo "Dataset API: http://$(HOST):$(API_PORT)/api/v1/products (Delta Sharing: /delta-sharing)"; \
	$(BIN)/dg dev -w workspace.yaml -h $(HOST) -p $(PORT)

materialize: setup
	$(BIN)/dataops materialize --all

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: tools lint
	$(BIN)/pytest -n 2 --dist loadscope
