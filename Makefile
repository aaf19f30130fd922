# The two commands of the README: `make sandbox` (deploy) and `make test` (everything CI runs).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup system-packages test-servers lint pytest molecule test sandbox sandbox-destroy bench clean

# Control-node toolchain, pinned by requirements/constraints.txt. Re-run after a pull: pip is a no-op
# when nothing changed.
setup: $(BIN)/.installed
$(BIN)/.installed: requirements/control.in requirements/constraints.txt collectors/pyproject.toml \
		collectors/tooling/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements/constraints.txt -r requirements/control.in
	$(BIN)/pip install -q -c requirements/constraints.txt -e collectors -e 'collectors/tooling[test]'
	touch $@

# What the tests run beside Python: a Docker engine, PostgreSQL server binaries, debootstrap.
system-packages:
	scripts/install-system-packages.sh

# Servers no package provides, built from the registries once per machine and cached in
# ~/.cache/bloomberg-tools: influxd (InfluxDB 2) for the Python tests and its stand-in image.
test-servers:
	scripts/build-influxd.sh >/dev/null

lint: setup
	yamllint --strict .
	ansible-lint --offline --profile production
	ruff check .
	ruff format --check collectors bench molecule tests scripts

# pytest exits 5 when it collected nothing: that is a failure here, never a pass. Each run's output is
# also kept in .cache/ for scripts/test-failures.sh.
pytest: setup system-packages test-servers
	mkdir -p .cache
	cd collectors && pytest | tee ../.cache/pytest-collectors.log || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no test in collectors/" >&2; exit $$rc; }
	pytest tests | tee .cache/pytest-tests.log || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no test in tests/" >&2; exit $$rc; }

molecule: setup system-packages test-servers
	scripts/ensure-docker.sh
	scripts/build-target-image.sh
	scripts/molecule-all.sh

# The linters first (a quick no); then the Python tests beside Molecule, whose targets spend most of their
# time waiting: the run ends with the longer of the two instead of their sum. Each one's output is printed
# whole when it ends; a failure ends with the lines that say what failed, wherever they were printed.
test: lint
	rm -f .cache/pytest-*.log .cache/molecule-logs/*.rc
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest molecule || { scripts/test-failures.sh; exit 1; }

sandbox: setup test-servers
	scripts/ensure-docker.sh
	scripts/build-target-image.sh
	scripts/sandbox.sh up

sandbox-destroy:
	scripts/sandbox.sh destroy

bench: setup
	bench/deploy.sh

clean: sandbox-destroy
	rm -rf $(VENV) .cache
