PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sluice demo $(if $(DURATION),--duration $(DURATION))

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

test: $(STAMP) tools
	$(BIN)/pytest -W error $(PYTEST_ARGS)

# A real MySQL client for the wire-protocol tests, and Java for writing PMML models, from
# Debian's packages.
tools:
	@command -v mariadb >/dev/null || { \
	  echo "installing the mariadb client (Debian package mariadb-client)"; \
	  (apt-get install -y -qq --no-install-recommends mariadb-client >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && \
	    apt-get install -y -qq --no-install-recommends mariadb-client >/dev/null)) || \
	  echo "could not install mariadb-client: the tests that use it will be skipped"; }
	@command -v java >/dev/null || { \
	  echo "installing Java (Debian package default-jre-headless): PMML models are written by JPMML"; \
	  (apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && \
	    apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null)) || \
	  echo "could not install Java: the PMML model test will fail"; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
