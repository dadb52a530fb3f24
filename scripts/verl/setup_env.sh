#!/usr/bin/env bash
# Create verl's own environment (verl 0.9.1 pins transformers<5.11 and omegaconf<2.4, so it cannot share
# .venv with the rest of SpatialTree-Train). Idempotent: an existing environment with verl importable is kept.
#
#   VERL_VENV=.venv-verl (default)   where the environment goes
#   VERL_TORCH_SPEC="torch==2.13.0"  torch for it. Default: torch==2.13.0 (a CPU build; enough for the
#                                    conversion/config/reward checks). On a GPU cluster use the CUDA torch
#                                    your vLLM/SGLang wheel was built for, e.g. VERL_TORCH_SPEC="torch==2.9.0".
#   VERL_EXTRAS=""                   extra pip requirements, e.g. "vllm==0.11.0" on GPU nodes (rollout engine)
#
# The project's packages `rewards` (the reward adapter verl calls) and `data_mix` are not installed into this
# environment: the verl config points at rewards/verl_reward.py by file path, and that module only needs numpy
# and scipy (installed with verl).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VERL_VENV:-.venv-verl}
PY=${PYTHON:-python3}
TORCH_SPEC=${VERL_TORCH_SPEC:-torch==2.13.0}
VERL_SPEC=${VERL_SPEC:-verl==0.9.1}

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import verl, torch" 2>/dev/null; then
  echo "[verl-env] $VENV ready (verl $("$VENV/bin/python" -c 'import verl; print(verl.__version__)'))"
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[verl-env] creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
echo "[verl-env] installing $TORCH_SPEC"
# shellcheck disable=SC2086
pip install $TORCH_SPEC
echo "[verl-env] installing $VERL_SPEC ${VERL_EXTRAS:-}"
# torch is pinned to what was just installed so that verl's own requirements cannot swap it for a CUDA build.
TORCH_PIN=$("$VENV/bin/python" -c 'import torch; print("torch==" + torch.__version__.split("+")[0])')
# shellcheck disable=SC2086
pip install "$VERL_SPEC" "$TORCH_PIN" pyarrow pandas ${VERL_EXTRAS:-}
"$VENV/bin/python" -c "import verl, torch, transformers, omegaconf; print('[verl-env] ready: verl', verl.__version__, \
'torch', torch.__version__, 'transformers', transformers.__version__, 'omegaconf', omegaconf.__version__)"
