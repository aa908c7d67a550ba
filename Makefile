# One-command entry points. Everything installs into .venv from nothing.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
BENCH_ARGS ?= --storm 10000 --growth 0,1000000 --fleet 90000 --modes single,paced,batch,gateway-storm,gateway-connected,gateway-chain

.PHONY: install run test test-faults bench bench-csv bench-prune bench-pricing migrate clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

migrate: install
	$(BIN)/cpms migrate

run: install
	$(BIN)/cpms migrate
	$(BIN)/cpms seed-charger --id CP-123 --secret devsecret
	$(BIN)/cpms run all

# Safe on any machine: needs a Postgres and a RabbitMQ it may create databases and queues in.
test: install
	$(BIN)/pytest -m "not faults"

# The fault suite stops and starts this machine's RabbitMQ and Postgres (Debian's pg_ctlcluster,
# rabbitmqctl): run it only on a machine of your own, or in CI.
test-faults: install
	$(BIN)/pytest -m faults

bench: install
	@$(BIN)/python -m bench $(BENCH_ARGS)

bench-csv: install
	@$(BIN)/python -m bench.csv_export

bench-prune: install
	@$(BIN)/python -m bench.prune

bench-pricing: install
	@$(BIN)/python -m bench.pricing

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
