# SpatialTree-Train. Every target bootstraps .venv first (idempotent; see scripts/bootstrap.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONUNBUFFERED := 1
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test lint bench gpu-check clean help

help:
	@echo "make demo   - run the quickstart pipeline on the embedded tiny model and stand-in data (MODEL=tiny-qwen3-vl ...)"
	@echo "make test   - ruff + the whole test suite (CPU, no network)"
	@echo "make bench  - the side-by-side performance harness (writes bench/results.json, docs/PERFORMANCE.md)"
	@echo "make gpu-check - what CPUs cannot check (flash-attn packing, bf16, vLLM, NCCL ZeRO-3, MFU): bench/gpu_results.json"

setup:
	@bash scripts/bootstrap.sh

demo: setup
	@MODEL=$(MODEL) bash scripts/demo.sh

lint: setup
	$(PY) -m ruff check .

test: setup lint
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench

# One line and exit 0 on a machine without a GPU; GPU_CHECK_ARGS="--only packing zero3", "--model DIR", ...
gpu-check: setup
	@$(PY) -m bench.gpu_check $(GPU_CHECK_ARGS)

clean:
	rm -rf runs demo_out .pytest_cache
