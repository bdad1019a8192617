# Every set-up step lives here: a fresh clone needs only `make audit` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
AUDIT_OUT ?= build/sample-audit

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: install audit test lint bench sample-data clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

## Run the full audit on sample_data/ with the embedded Prefect default (no server needed).
audit: $(STAMP)
	$(BIN)/distill-audit demo --out $(AUDIT_OUT)

## Run the whole test suite (what .ci/run calls).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

## Regenerate the synthetic demo data (deterministic).
sample-data: $(STAMP)
	$(BIN)/python -m sample_data.generate

clean:
	rm -rf build .pytest_cache
