PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DRIVERS := $(VENV)/.drivers
# Azurite, Microsoft's Azure Storage emulator, from the npm registry (for the AZURE source's
# tests), with every package it needs pinned by tools/azurite/package-lock.json.
NODE_BIN := tools/azurite/node_modules/.bin

.PHONY: demo test lint bench clean tools

$(STAMP): pyproject.toml setup.py src/sluice/native/kafkadrain.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sluice demo $(if $(DURATION),--duration $(DURATION))

bench: $(STAMP) $(DRIVERS)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The MySQL drivers the BI-tools tests connect with; mysqlclient builds against Debian's
# libmariadb-dev, which `tools` installs.
$(DRIVERS): $(STAMP) | tools
	$(BIN)/pip install --quiet -e '.[drivers]'
	touch $(DRIVERS)

test: $(STAMP) tools $(DRIVERS)
	PATH="$(CURDIR)/$(NODE_BIN):$$PATH" $(BIN)/pytest -W error $(PYTEST_ARGS)

# A real MySQL client for the wire-protocol tests, Java (PMML models, the JDBC test) with
# MariaDB's Connector/J and C libraries (JDBC, mysqlclient), RabbitMQ and
# Chromium (the dashboard's browser tests; Playwright drives it, as its own browser download
# cannot work offline) from Debian's packages; Azurite from the npm registry. RabbitMQ's node is started by the tests
# on 127.0.0.1, never as a service: a policy-rc.d stops its package from starting one.
tools:
	@command -v mariadb >/dev/null || { \
	  echo "installing the mariadb client (Debian package mariadb-client)"; \
	  (apt-get install -y -qq --no-install-recommends mariadb-client >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && \
	    apt-get install -y -qq --no-install-recommends mariadb-client >/dev/null)) || \
	  echo "could not install mariadb-client: the tests that use it will be skipped"; }
	@command -v javac >/dev/null || { \
	  echo "installing Java (Debian package default-jdk-headless): JPMML writes PMML models, and the JDBC test is a Java program"; \
	  (apt-get install -y -qq --no-install-recommends default-jdk-headless >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && \
	    apt-get install -y -qq --no-install-recommends default-jdk-headless >/dev/null)) || \
	  echo "could not install Java: the PMML model and JDBC tests will fail"; }
	@{ test -e /usr/share/java/mariadb-java-client.jar && pkg-config --exists libmariadb; } || { \
	  echo "installing MariaDB Connector/J and C (Debian packages libmariadb-java, libmariadb-dev): the JDBC test and mysqlclient use them"; \
	  (apt-get install -y -qq --no-install-recommends libmariadb-java libmariadb-dev pkg-config >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && \
	    apt-get install -y -qq --no-install-recommends libmariadb-java libmariadb-dev pkg-config >/dev/null)) || \
	  echo "could not install libmariadb-java/libmariadb-dev: the JDBC and mysqlclient tests will fail"; }
	@test -x /usr/lib/rabbitmq/bin/rabbitmq-server || { \
	  echo "installing RabbitMQ (Debian package rabbitmq-server): the RABBITMQ source's tests use it"; \
	  guard=; [ -e /usr/sbin/policy-rc.d ] || { \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1; }; \
	  (apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && \
	    apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null)) || \
	  echo "could not install rabbitmq-server: the RABBITMQ source's tests will fail"; \
	  [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; }
	@command -v chromium >/dev/null || { \
	  echo "installing Chromium (Debian package chromium): the dashboard's browser tests use it"; \
	  (apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null && \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null)) || \
	  echo "could not install chromium: the dashboard's browser test will be skipped"; }
	@test -x $(NODE_BIN)/azurite-blob || { \
	  echo "installing Azurite (tools/azurite) with npm ci: the AZURE source's tests use it"; \
	  (cd tools/azurite && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || \
	  echo "could not install Azurite: the AZURE source's tests will fail"; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) tools/azurite/node_modules build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache src/sluice/native/*.so
