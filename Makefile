# SpatialTree-Train. Every target bootstraps .venv first (idempotent; see scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONUNBUFFERED := 1
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test lint bench clean help

help:
	@echo "make demo   - run the quickstart pipeline on the embedded tiny model and stand-in data"
	@echo "make test   - ruff + the whole test suite (CPU, no network)"
	@echo "make bench  - the side-by-side performance harness (writes bench/results.json, docs/PERFORMANCE.md)"

setup:
	@bash scripts/bootstrap.sh

demo: setup
	@bash scripts/demo.sh

lint: setup
	$(PY) -m ruff check .

test: setup lint
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench

clean:
	rm -rf runs demo_out .pytest_cache
