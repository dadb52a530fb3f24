#!/usr/bin/env bash
# Create or update the project's virtual environment, idempotently.
#
#   VENV=.venv (default)    where the environment lives
#   TORCH_SPEC="..."        pip requirement(s) for torch; default: keep a torch already in the venv,
#                           else the CUDA-enabled latest on a machine with nvidia-smi, else
#                           torch==2.14.1 torchvision==0.29.1 (works on CPU; README.md, "Using it for real")
#   EXTRAS=dev              extras of this package to install (comma separated: dev,gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-dev}
PY=${PYTHON:-python3}
stamp="$VENV/.bootstrap-stamp"
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)-$EXTRAS

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import torch, torchvision, transformers" 2>/dev/null; then
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

if [ -n "${TORCH_SPEC:-}" ]; then
  echo "[bootstrap] installing torch from TORCH_SPEC=$TORCH_SPEC"
  # shellcheck disable=SC2086
  pip install $TORCH_SPEC
elif "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  echo "[bootstrap] keeping installed torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "[bootstrap] CUDA machine: installing torch + torchvision (set TORCH_SPEC to choose a build)"
  pip install "torch>=2.6" "torchvision>=0.21"
else
  echo "[bootstrap] no CUDA: installing torch==2.14.1 torchvision==0.29.1 (CPU-capable pair, from the local cache where present)"
  pip install "torch==2.14.1" "torchvision==0.29.1"
fi

echo "[bootstrap] installing spatialtree-train[$EXTRAS] (editable)"
pip install -e ".[$EXTRAS]"
# The reference scorer for the rewards parity test: lmms-eval's rule_metrics.py, loaded by file path; and
# the reference of lmms-eval's image inputs (qwen-vl-utils' fetch_image) for tests/test_eval_inputs.py.
# --no-deps: only their files are needed, not lmms-eval's (large) dependency tree.
case ",$EXTRAS," in *,dev,*) pip install --no-deps "lmms-eval==0.7.3" "qwen-vl-utils==0.0.14" ;; esac
echo "$want" > "$stamp"
echo "[bootstrap] ready: $VENV ($("$VENV/bin/python" -c 'import torch, transformers, trl; print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}")'))"
